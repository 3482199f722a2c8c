"""The nnU-Net v2 adapter: the only package of nnactive that imports ``nnunetv2``.

Importing this package only sets nnU-Net's import-time environment defaults (see
:mod:`~nnactive_core.nnunet.environment`); the heavy modules are imported by the commands that need them.
Folders are passed explicitly as :class:`~nnactive_core.nnunet.environment.NnunetFolders`; the datasets
they hold stay plain nnU-Net datasets.

One active-learning loop, as the experiment runner drives it::

    from nnactive_core.nnunet.environment import NnunetFolders
    from nnactive_core.nnunet.planning import plan_dataset, prepare_experiment_plans
    from nnactive_core.nnunet.preprocessing import preprocess_cases
    from nnactive_core.nnunet.profiles import get_profile
    from nnactive_core.nnunet.splits import make_splits, write_splits
    from nnactive_core.nnunet.training import model_folder, train_fold
    from nnactive_core.nnunet.prediction import EnsemblePredictor
    from nnactive_core.nnunet.validation import validate_ensemble

    base = NnunetFolders.under(nnactive_raw)                      # the fully annotated base dataset
    group = NnunetFolders.under(nnactive_data / "Dataset004_Hippocampus")
    profile = get_profile("tiny", epochs=5)
    plan_dataset(base, "Dataset004_Hippocampus")                  # once per base dataset
    # once per experiment:
    prepare_experiment_plans(base, "Dataset004_Hippocampus", group, experiment, profile)

    preprocess_cases(group, experiment, changed_cases)            # every loop: cases whose labels changed
    splits = make_splits(labels_per_annotated_case, n_folds=5, seed=seed)
    write_splits(group.preprocessed_dataset(experiment) / "splits_final.json", splits)
    for fold in range(5):
        train_fold(group, experiment, fold, profile, seed=seed, loop=loop, on_epoch=progress)
    models = model_folder(group, experiment)
    validate_ensemble(models, range(5), validation_cases, summary_file=..., prediction_folder=...)
    for case in EnsemblePredictor(models, range(5)).predict_cases(pool_cases):
        scores = strategy(case.probabilities)                     # members x classes x Z x Y x X
"""

from nnactive_core.nnunet.environment import configure_process_defaults

configure_process_defaults()
