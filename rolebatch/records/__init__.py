"""The record files: what goes in, what comes out, and the state between.

job         the JSONL input, checked whole before anything is sent
roles       sweeps: every record under every role of a roles file
profiles    a role given as a character (RoleLLM): instruction, catchphrases, example turns
shards      one shard of a job (--shard K/N), by a hash of the id
ids         a flat table of id hashes, for a million records in flat memory
lines       what became of one record, as one output line; the one reader of an output's lines
output      the output file, which is also the run's state: opening, resume, its order of events
sidecar     the configuration an output was written under, and its changes in words
index       which line of an output answers which record (offsets, the id-hash join)
writer      an output's lock, and appending to it
compaction  a finished output rewritten in input order; lines set aside, never deleted
files       writing a file so that a failure leaves it whole (a temp file, an append)
merge       shard outputs joined into one output in input order
report      an output's lines compared per role, model or metadata key
"""
