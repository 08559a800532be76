"""Pacing: how fast requests may go.

limiter   the run's budgets (requests/min, tokens/min), Retry-After holds,
          limits learned from response headers, the AIMD window
bucket    a budget refilling continuously, with about a second's burst
window    the server's window on a limit as we count it: a state machine
headers   the rate-limit headers of OpenAI, Anthropic and OpenRouter, read
shared    one provider limit shared by processes through Redis (--quota)
queueing  a server on the user's machine that queues: when in flight is too many
estimate  the tokens a request will take, guessed before it is sent
backoff   how long to wait before a retry
"""
