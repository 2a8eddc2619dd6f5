"""course_lib: the tested library behind the LLM-assisted recommendation course (兴趣分层).

Modules follow the notebooks: data -> encode -> fuse -> rank -> tiers/serving -> coldstart -> metrics/evaluate
(recovery: tiering judged by a ground truth).
"""

__version__ = "0.1.0"
