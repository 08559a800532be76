"""How answers are bought; everything else about a run is shared.

live     one HTTP request per attempt, at the provider's pace
"""
