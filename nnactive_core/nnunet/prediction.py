"""Per-member ensemble probabilities for pool cases, one case at a time.

nnU-Net's predictor averages the *logits* of all folds; uncertainty needs each member's probabilities.
So every case is preprocessed once, then each fold's weights are loaded into the one network and run
through nnU-Net's sliding window and its export to the raw (resampled) image grid. The caller gets the
stack ``members x classes x Z x Y x X`` for one case from a generator; when it asks for the next case the
stack is dropped. Stacks above the memory bound live in a temporary ``np.memmap`` instead of RAM.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import attrs
import numpy as np
import torch
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnactive_core.nnunet.environment import available_memory_bytes, resolve_device
from nnactive_core.nnunet.features import FeatureMap, TileFeatureAccumulator, hooked_stage, to_raw_grid
from nnactive_core.nnunet.fold_models import CHECKPOINT, FoldModels, load_fold_models

DEFAULT_MEMORY_FRACTION = 0.25


@attrs.frozen(kw_only=True)
class CasePrediction:
    """One pool case: ``probabilities`` is members x classes x Z x Y x X in numpy (z, y, x) order on the
    case's raw grid (a read-only ``np.memmap`` when ``spilled``); valid until the next case is requested."""

    case: str
    probabilities: np.ndarray
    features: FeatureMap | None = None
    spilled: bool = False


class _TilePredictor(nnUNetPredictor):
    """nnU-Net's predictor, telling a feature hook which tile each un-mirrored forward pass belongs to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.capture = False
        self.accumulator: TileFeatureAccumulator | None = None
        self.factor: tuple[int, ...] = (1, 1, 1)
        self._image_shape: tuple[int, ...] = ()
        self._slicers: list = []
        self._tile = 0
        self._armed = False

    def predict_sliding_window_return_logits(self, input_image: torch.Tensor):
        self._image_shape = tuple(input_image.shape[1:])
        return super().predict_sliding_window_return_logits(input_image)

    def _internal_predict_sliding_window_return_logits(self, data, slicers, do_on_device: bool = True):
        self._slicers, self._tile = slicers, 0
        if self.capture:
            self.accumulator = TileFeatureAccumulator(self._image_shape, data.shape[1:], self.factor)
        return super()._internal_predict_sliding_window_return_logits(data, slicers, do_on_device)

    def _internal_maybe_mirror_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        # the first network call for a tile is the un-mirrored one
        self._armed = True
        return super()._internal_maybe_mirror_and_predict(x)

    def hook(self, module, inputs, output) -> None:
        if self.accumulator is None or not self._armed:
            return
        self._armed = False
        self.accumulator.add(output[0], self._slicers[self._tile][1:])
        self._tile += 1


class EnsemblePredictor:
    """Predict pool cases with the fold ensemble of ``model_dir`` (see :func:`training.model_folder`).

    ``dtype``: float16 (default) or float32 probabilities. ``memory_limit_bytes``: largest stack kept in
    RAM (default: a quarter of the memory available when the case starts); larger stacks are spilled to
    ``spill_dir`` (default: the system temporary folder). ``capture_features`` adds a
    :class:`~nnactive_core.nnunet.features.FeatureMap` per case (works with and without mirroring).
    """

    def __init__(
        self,
        model_dir: Path,
        folds: Sequence[int],
        *,
        device: str | torch.device | None = None,
        tile_step_size: float = 0.5,
        use_gaussian: bool = True,
        mirroring: bool = False,
        dtype: str | np.dtype = "float16",
        memory_limit_bytes: int | None = None,
        spill_dir: Path | None = None,
        capture_features: bool = False,
        checkpoint_name: str = CHECKPOINT,
    ):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float16, np.float32):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype}")
        self.memory_limit_bytes = memory_limit_bytes
        self.spill_dir = spill_dir
        self.models: FoldModels = load_fold_models(
            model_dir, folds, device=self.device, checkpoint_name=checkpoint_name
        )
        if mirroring and self.models.mirror_axes is None:
            raise ValueError(
                f"mirroring requested but the models in {model_dir} were trained without mirror axes"
            )
        with redirect_stdout(StringIO()):  # a notice about on-device prediction, printed for every CPU
            self.predictor = _TilePredictor(
                tile_step_size=tile_step_size,
                use_gaussian=use_gaussian,
                use_mirroring=mirroring,
                perform_everything_on_device=self.device.type == "cuda",
                device=self.device,
                allow_tqdm=False,
            )
        m = self.models
        self.predictor.manual_initialization(
            m.network,
            m.plans_manager,
            m.configuration_manager,
            m.parameters,
            m.dataset_json,
            m.trainer_name,
            m.mirror_axes,
        )
        self.capture_features = capture_features
        if capture_features:
            stage, self.predictor.factor = hooked_stage(m.network)
            stage.register_forward_hook(self.predictor.hook)
            self.predictor.capture = True
        self.preprocessor = m.configuration_manager.preprocessor_class(verbose=False)

    @property
    def members(self) -> int:
        return len(self.models.parameters)

    @property
    def label_values(self) -> tuple[int, ...]:
        return self.models.label_values

    def predict_cases(self, cases: Iterable[tuple[str, Sequence[Path]]]) -> Iterator[CasePrediction]:
        """Yield one :class:`CasePrediction` per ``(case_id, image_files)``, in order."""
        for case, image_files in cases:
            spill = None
            try:
                prediction, spill = self._predict_case(case, [str(p) for p in image_files])
                yield prediction
            finally:
                if spill is not None:
                    shutil.rmtree(spill, ignore_errors=True)

    def _predict_case(self, case: str, image_files: list[str]) -> tuple[CasePrediction, Path | None]:
        m = self.models
        data, _, properties = self.preprocessor.run_case(
            image_files, None, m.plans_manager, m.configuration_manager, m.dataset_json
        )
        data = torch.from_numpy(data)
        raw_shape = tuple(
            int(properties["shape_before_cropping"][i]) for i in m.plans_manager.transpose_backward
        )
        shape = (self.members, m.label_manager.num_segmentation_heads, *raw_shape)
        stack, spill = self._allocate(case, shape)
        maps = []
        threads = torch.get_num_threads()
        for member, parameters in enumerate(m.parameters):
            m.network.load_state_dict(parameters)
            logits = self.predictor.predict_sliding_window_return_logits(data).cpu()
            _, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits, m.plans_manager, m.configuration_manager, m.label_manager, properties, True, threads
            )
            stack[member] = probabilities
            if self.capture_features:
                values, factor = to_raw_grid(
                    self.predictor.accumulator.mean(),
                    self.predictor.factor,
                    data.shape[1:],
                    properties,
                    m.plans_manager.transpose_backward,
                )
                maps.append(values)
        if spill is not None:
            stack.flush()
            del stack
            stack = np.load(spill / "probabilities.npy", mmap_mode="r")
        features = None
        if maps:
            features = FeatureMap(values=np.concatenate(maps), factor=factor, members=self.members)
        return CasePrediction(
            case=case, probabilities=stack, features=features, spilled=spill is not None
        ), spill

    def _allocate(self, case: str, shape: tuple[int, ...]) -> tuple[np.ndarray, Path | None]:
        size = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        limit = self.memory_limit_bytes
        if limit is None:
            limit = int(DEFAULT_MEMORY_FRACTION * available_memory_bytes())
        if size <= limit:
            return np.empty(shape, dtype=self.dtype), None
        folder = Path(tempfile.mkdtemp(prefix=f"nnactive_probs_{case}_", dir=self.spill_dir))
        return np.lib.format.open_memmap(folder / "probabilities.npy", "w+", self.dtype, shape), folder
