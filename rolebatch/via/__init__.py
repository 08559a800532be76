"""How answers are bought; everything else about a run is shared.

live         one request per attempt, now, at the provider's pace
client       one record asked: instructor over the transport, HTTP retries
breaker      the run stopped when the endpoint, not the records, is at fault
signals      SIGINT/SIGTERM while buying: the first stops new work, a second all
request      the request a record becomes: task, options and provider together
cached       the response cache: a record's key, a hit as a line, answers stored
verdict      what an answer means: parsed, a re-ask, or an error of a kind
batches      through a provider's batch API: submit, wait, collect, in rounds
submission   a pack of requests to the provider as one batch, exactly once
batch_lines  what a record's rounds come to as a line, and writing it
journal      the batch steps written down before each next one; a round and its fate
at_provider  an output's batches at the provider: status and cancel
"""
