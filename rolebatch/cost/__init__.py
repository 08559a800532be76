"""What answers cost, in dollars.

    prices  the price of a model's tokens: genai-prices' bundled data, --price,
            or free (the embedded model); live and batch-API rates
    cap     --max-cost: each request's cost reserved before it is sent,
            settled from what it really used

Nothing here imports genai-prices at start-up: it is looked up when a run or
an estimate needs a price (its import takes ~0.15 s).
"""
