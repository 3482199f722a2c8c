"""Per-member ensemble probabilities for pool cases, one case at a time.

nnU-Net's predictor averages the *logits* of all folds; uncertainty needs each member's probabilities.
So every case is preprocessed once, then each fold's weights are loaded into the one network and run
through nnU-Net's sliding window, and its logits go back to the raw (resampled) image grid with
nnU-Net's own resampling, softmax and crop reversal (the probability half of nnU-Net's export; the
segmentation half, an argmax nobody reads, is skipped). The caller gets the stack ``members x classes x
Z x Y x X`` for one case from a generator; when it asks for the next case the stack is dropped.

A stack above the memory bound is spilled: each member is written to a temporary ``.npy`` file with
plain file writes as soon as it is predicted (so the file's pages are page cache, not this process's
memory), and the caller gets a copy-on-write memory map of it, which the query engine scores slab by
slab. The spill folder is removed when the caller moves on, stops, or when prediction raises.
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
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

from nnactive_core.nnunet.environment import available_memory_bytes, resolve_device
from nnactive_core.nnunet.features import FeatureMap, TileFeatureAccumulator, hooked_stage, to_raw_grid
from nnactive_core.nnunet.fold_models import CHECKPOINT, FoldModels, load_fold_models
from nnactive_core.threads import torch_threads

DEFAULT_MEMORY_FRACTION = 0.25
TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32}


@attrs.frozen(kw_only=True)
class CasePrediction:
    """One pool case: ``probabilities`` is members x classes x Z x Y x X in numpy (z, y, x) order on the
    case's raw grid (a copy-on-write ``np.memmap`` of the spill file when ``spilled``: writes never reach
    the file); valid until the next case is requested."""

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
    """Predict pool cases with the fold ensemble of ``model_dir`` (see :func:`training.model_folder`);
    with ``snapshots > 1`` every fold gives its snapshot checkpoints as members, so the stack has
    ``len(folds) * snapshots`` members and every score strategy reads it as a fold ensemble.

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
        snapshots: int = 1,
    ):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float16, np.float32):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype}")
        self.memory_limit_bytes = memory_limit_bytes
        self.spill_dir = spill_dir
        self.models: FoldModels = load_fold_models(
            model_dir, folds, device=self.device, checkpoint_name=checkpoint_name, snapshots=snapshots
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
        """Yield one :class:`CasePrediction` per ``(case_id, image_files)``, in order. Torch runs on
        the thread budget (:func:`nnactive_core.threads.thread_budget`) while a case is predicted."""
        for case, image_files in cases:
            spill: list[Path] = []
            try:
                with torch_threads():
                    prediction = self._predict_case(case, [str(p) for p in image_files], spill)
                yield prediction
            finally:
                for folder in spill:
                    shutil.rmtree(folder, ignore_errors=True)

    def _predict_case(self, case: str, image_files: list[str], spill: list[Path]) -> CasePrediction:
        """Predict one case; a spill folder it creates is appended to ``spill`` at once, so the caller
        removes it whatever happens next."""
        m = self.models
        data, _, properties = self.preprocessor.run_case(
            image_files, None, m.plans_manager, m.configuration_manager, m.dataset_json
        )
        data = torch.from_numpy(data)
        raw_shape = tuple(
            int(properties["shape_before_cropping"][i]) for i in m.plans_manager.transpose_backward
        )
        shape = (self.members, m.label_manager.num_segmentation_heads, *raw_shape)
        stack = self._stack(case, shape, spill)
        maps = []
        try:
            for member, parameters in enumerate(m.parameters):
                m.network.load_state_dict(parameters)
                logits = self.predictor.predict_sliding_window_return_logits(data).cpu()
                stack.write(member, self._probabilities(logits, properties))
                del logits
                if self.capture_features:
                    values, factor = to_raw_grid(
                        self.predictor.accumulator.mean(),
                        self.predictor.factor,
                        data.shape[1:],
                        properties,
                        m.plans_manager.transpose_backward,
                    )
                    maps.append(values)
        finally:
            stack.close()
        features = None
        if maps:
            features = FeatureMap(values=np.concatenate(maps), factor=factor, members=self.members)
        return CasePrediction(
            case=case, probabilities=stack.finish(), features=features, spilled=stack.path is not None
        )

    def _probabilities(self, logits: torch.Tensor, properties: dict) -> np.ndarray:
        """One member's probabilities (classes x raw grid in numpy order, in the stack's dtype): the
        probability half of nnU-Net's ``convert_predicted_logits_to_segmentation_with_correct_shape``,
        the same calls in the same order, so the values are those nnU-Net exports. The cast to float16
        happens in torch (rounding to nearest even, as numpy's, and many times faster)."""
        m = self.models
        forward = m.plans_manager.transpose_forward
        cropped_shape = properties["shape_after_cropping_and_before_resampling"]
        spacing = [properties["spacing"][i] for i in forward]
        current_spacing = (
            m.configuration_manager.spacing
            if len(m.configuration_manager.spacing) == len(cropped_shape)
            else [spacing[0], *m.configuration_manager.spacing]
        )
        logits = m.configuration_manager.resampling_fn_probabilities(
            logits, cropped_shape, current_spacing, spacing
        )
        probabilities = m.label_manager.apply_inference_nonlin(logits)
        del logits
        probabilities = m.label_manager.revert_cropping_on_probabilities(
            probabilities, properties["bbox_used_for_cropping"], properties["shape_before_cropping"]
        )
        if not isinstance(probabilities, torch.Tensor):
            probabilities = torch.from_numpy(probabilities)
        probabilities = probabilities.cpu().to(TORCH_DTYPES[self.dtype]).numpy()
        return probabilities.transpose([0] + [i + 1 for i in m.plans_manager.transpose_backward])

    def _stack(self, case: str, shape: tuple[int, ...], spill: list[Path]) -> _Stack:
        size = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        limit = self.memory_limit_bytes
        if limit is None:
            limit = int(DEFAULT_MEMORY_FRACTION * available_memory_bytes())
        if size <= limit:
            return _Stack(shape, self.dtype)
        folder = Path(tempfile.mkdtemp(prefix=f"nnactive_probs_{case}_", dir=self.spill_dir))
        spill.append(folder)
        return _Stack(shape, self.dtype, folder / "probabilities.npy")


class _Stack:
    """The members x classes x Z x Y x X stack of one case, filled member by member in order: an array
    in RAM, or (``path`` given) a ``.npy`` file written with plain writes, a member's C order being
    the file's order."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, path: Path | None = None):
        self.path = path
        self.array = np.empty(shape, dtype=dtype) if path is None else None
        self._dtype = np.dtype(dtype)
        self._handle = None
        if path is not None:
            self._handle = open(path, "wb")
            header = {
                "descr": np.lib.format.dtype_to_descr(self._dtype),
                "fortran_order": False,
                "shape": shape,
            }
            np.lib.format.write_array_header_2_0(self._handle, header)

    def write(self, member: int, probabilities: np.ndarray) -> None:
        if self.array is not None:
            self.array[member] = probabilities
        else:
            np.ascontiguousarray(probabilities, dtype=self._dtype).tofile(self._handle)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def finish(self) -> np.ndarray:
        if self.array is not None:
            return self.array
        self.close()
        return np.load(self.path, mmap_mode="c")
