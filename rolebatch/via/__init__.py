"""How answers are bought; everything else about a run is shared.

live            one HTTP request per attempt, at the provider's pace
batches         through a provider's batch API: submit, wait, collect
journal         the batch steps written down before each next one
openai_batches  OpenAI's Files and Batch APIs (the provider-specific part)
"""
