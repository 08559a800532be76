"""The response cache: answers already bought, kept so that no request is
bought twice across outputs, shards and CI runs (``--cache DIR``).  The store
is here (``store``); what a request's key is, and how a stored answer becomes
a line again, is the buying side's (``via.cached``)."""
