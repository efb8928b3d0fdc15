"""Evaluation: retrieval and answer metrics, retrieval-vs-answer consistency, the ``gem-rag eval`` runner.

Example:
    >>> from gem_rag.eval import answer_consistency
    >>> answer_consistency(model, "Who won?", "Denver Broncos", ["The Denver Broncos won."]).label
    'consistent'
"""

from gem_rag.eval.consistency import ConsistencyReport, answer_consistency, judge_relevance
from gem_rag.eval.data import EvalData, EvalDataError, EvalQuestion, Passage, load_eval_data
from gem_rag.eval.runner import EvalSettings, rebuild_report, run_evaluation

__all__ = ["ConsistencyReport", "EvalData", "EvalDataError", "EvalQuestion", "EvalSettings", "Passage",
           "answer_consistency", "judge_relevance", "load_eval_data", "rebuild_report", "run_evaluation"]
