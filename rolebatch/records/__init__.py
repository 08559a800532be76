"""The record files: what goes in, what comes out, and the state between.

job     the JSONL input, checked whole before anything is sent
lines   what became of one record, as one output line
output  the output file, which is also the run's state (resume, order)
"""
