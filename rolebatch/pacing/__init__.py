"""Pacing: how fast requests may go.

limiter   the run's budgets (requests/min, tokens/min), Retry-After holds,
          limits learned from response headers, the AIMD window
estimate  tokens a request will cost, guessed before it is sent
backoff   how long to wait before a retry
"""
