"""The continuous-training DAG's tasks in the order they run: one list for the DAG's shape and its real runs."""

CONTINUOUS_TRAINING_STEPS = [
    "check_triggers",
    "merge_annotations",
    "train_challenger",
    "register_challenger",
    "compare_with_champion",
    "start_canary",
    "decide",
]
