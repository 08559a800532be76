"""Choosing a role: ``rolebatch search``.

split     the job's questions, seeded, into a search part and a held-out part
race      successive halving of the candidates on the search part
flow      the search as it runs: each round an ordinary run into its own
          output, the pick confirmed on the held-out part, ``search.json``
render    what it found, decision first: text, md, json, the page
estimate  what a search would ask and cost, against a full sweep
propose   candidate roles written by a model from a sample of the queries
"""
