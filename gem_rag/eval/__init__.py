"""Evaluation: retrieval and answer metrics, retrieval-vs-answer consistency."""
