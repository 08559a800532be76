"""The network, faked at the HTTP boundary: one real server on 127.0.0.1.

server          the loopback server and its state (``FakeServer``)
chat            Chat Completions: faults, recorded requests, synthesised answers
quota           limits per minute, counted in one-second windows, with headers
openai_batches  OpenAI's Files and Batch APIs
anthropic       Anthropic's Messages and Message Batches APIs
"""
