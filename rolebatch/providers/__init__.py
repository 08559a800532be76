"""Where answers come from: every provider, and the wire each one speaks.

    registry           the providers and what sets each apart; model strings resolved
    transport          the contract of a transport, and opening a provider's
    openai_http        any OpenAI-compatible endpoint over HTTP
    anthropic          Anthropic's Messages API
    local              the embedded offline model (llama.cpp)
    guide              the answer's schema enforced token by token on it (llguidance)
    models             when its models shut down (GET /models), for runs and `models`
    batch_api          the contract of a batch API, and its retrying call
    openai_batches     OpenAI's Files and Batch APIs
    anthropic_batches  Anthropic's Message Batches API

Each SDK's errors become rolebatch's own (``errors.RequestFailed``) in the
module that calls it.  Adding a provider touches this folder only: an entry
in ``registry``, and a transport or batch module if its protocol is new.
"""
