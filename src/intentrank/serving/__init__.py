"""Serving: turn a request into an ordered slate.

One path for the simulator's ranker policies and the HTTP feed service alike:
candidate feature rows (:class:`intentrank.ranking.candidates.CandidateFeatures`) → the multi-task
model → the ranking formula (:class:`intentrank.ranking.formula.RankingFormula`) → post-processors
(the clickbait penalty or any other) → an ordered slate with scores and propensities
(:func:`intentrank.serving.ordering.select_slates`).

The :class:`~intentrank.serving.policy.Policy` protocol is defined here; the simulator (a layer above,
a client of the serving system) implements its own oracle policies against it.
"""
