"""Model registry (MLflow): versions with their lineage, aliases with a recorded history, promotion gates.

Modules: ``mlflow_registry`` (register, read, download), ``aliases`` (champion/challenger, promote, rollback,
history), ``gates`` (the pure promotion decision), ``model_files`` (what a version packs), ``pyfunc_model``
(the model-from-code file MLflow loads; not imported by AutoInspect).
"""
