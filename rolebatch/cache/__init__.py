"""The response cache: answers already bought, kept so that no request is
bought twice across outputs, shards and CI runs (``--cache DIR``).

store    the SQLite store: several processes at once, a damaged file set
         aside, the least recently used answers evicted past a size limit

What a request's key is, and how a stored answer becomes a line again, is
the buying side's (``via.cached``).
"""
