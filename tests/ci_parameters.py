"""Small parameters per notebook for CI: the papermill tests (tests/test_notebooks.py) and the browser check
(``python -m tools.labcheck``, ``make check-lab``) share them; notebooks not listed run with their defaults.

Each keeps its story but encodes fewer items or sweeps fewer settings. Not part of the learner's library.
"""
CI_PARAMETERS = {
    "00_welcome": {"N_ITEMS_SHOWN": 4},
    "01_encoding": {"N_ITEMS": 240, "N_TIMING": 8, "N_SIZE": 8},
    "02_fusion": {"ALPHAS": [0.0, 0.5, 1.0], "IMAGE_SIZE": 64, "PCA_DIM": 32},
    "03_ranking": {"N_LOOP_USERS": 3},
    "04_tiering": {"THRESHOLDS": [0.6], "HALF_LIVES": [90.0], "EMERGING_TRENDS": [1.2], "FADING_TRENDS": [0.8],
                   "SECONDARY_WEIGHTS": [0.25], "N_BOOT": 100},
    "05_cold_start": {"NS": [0, 2], "IMAGE_SIZE": 64, "MIN_HISTORY": 40},
    "06_evaluation": {"IMAGE_SIZE": 64, "HYBRID_WEIGHTS": [0.0, 0.5], "N_BOOT": 30},
    "07_finetuning": {"MAX_PAIRS": 512, "COST_PAIRS": 64, "SMALL_PAIRS": 64, "SMALL_EPOCHS": 4, "N_BOOT": 100},
    "09_report": {"FAST": True},
    "08_explanations": {"N_USERS": 12, "N_LLM_USERS": 2, "N_BOOT": 100},
    "10_scaling": {"N_QUERIES": 100, "N_ENCODE": 60},  # FAST=True (50,000 items, 120 texts) is the default already
}
