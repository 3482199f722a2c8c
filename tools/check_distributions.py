"""Release checks on built sdists and wheels that twine and check-wheel-contents do not make.

``python tools/check_distributions.py DIST_DIR LICENSE`` (run by ``nox -s package``). For every
distribution in DIST_DIR: an sdist and a wheel of the same version; the SPDX licence and the LICENSE
file, byte for byte the repository's, in both; valid trove classifiers, ``Framework :: Pytest`` where a
pytest plugin ships; ``py.typed`` and a ``__version__`` equal to the metadata version in every top-level
package; a long description whose links are absolute (it becomes the PyPI page); for plugins, an
``nnactive-core`` range that holds the core's version and stops before 1.0, as the compatibility
promise in ``nnactive_core/hookspecs.py`` says. Prints one line per distribution and one per problem.
"""

from __future__ import annotations

import ast
import re
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version
from trove_classifiers import classifiers as known_classifiers

CORE = "nnactive-core"
LICENSE_EXPRESSION = "Apache-2.0"
REQUIRED_CLASSIFIERS = ("Topic :: Scientific/Engineering :: Medical Science Apps.",)
RELATIVE_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s]+)\)|^\[[^\]]+\]:\s*(?!https?://)(\S+)", re.M)


def metadata_of(text: str) -> Message:
    return HeaderParser().parsestr(text)


def check_metadata(meta: Message, where: str) -> list[str]:
    problems = []
    if Version(meta["Metadata-Version"]) < Version("2.4"):
        problems.append(f"{where}: Metadata-Version {meta['Metadata-Version']} predates licence expressions")
    if meta["License-Expression"] != LICENSE_EXPRESSION:
        problems.append(f"{where}: License-Expression is {meta['License-Expression']!r}")
    if meta.get_all("License-File") != ["LICENSE"]:
        problems.append(f"{where}: License-File is {meta.get_all('License-File')}, expected ['LICENSE']")
    classifiers = meta.get_all("Classifier") or []
    problems += [f"{where}: unknown classifier {c!r}" for c in classifiers if c not in known_classifiers]
    problems += [
        f"{where}: licence classifier {c!r} (PEP 639)" for c in classifiers if c.startswith("License ::")
    ]
    problems += [f"{where}: classifier {c!r} missing" for c in REQUIRED_CLASSIFIERS if c not in classifiers]
    if not any(c.startswith("Programming Language :: Python :: 3.") for c in classifiers):
        problems.append(f"{where}: no Python version classifiers")
    for field in ("Author", "Keywords", "Project-URL", "Requires-Python"):
        if not meta.get_all(field):
            problems.append(f"{where}: no {field}")
    if meta["Description-Content-Type"] != "text/markdown":
        problems.append(f"{where}: Description-Content-Type is {meta['Description-Content-Type']!r}")
    for match in RELATIVE_LINK.finditer(meta.get_payload() or ""):
        problems.append(f"{where}: relative link {match.group(1) or match.group(2)!r} in the description")
    return problems


def check_core_range(meta: Message, core_version: str | None, where: str) -> list[str]:
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    core = [r for r in requirements if canonicalize_name(r.name) == CORE and r.marker is None]
    if not core:
        return [f"{where}: does not depend on {CORE}"]
    specifier = core[0].specifier
    problems = []
    if core_version is not None and not specifier.contains(core_version, prereleases=True):
        problems.append(f"{where}: {CORE}{specifier} excludes the core's version {core_version}")
    if specifier.contains("1.0", prereleases=True) or not any(s.operator == ">=" for s in specifier):
        problems.append(f"{where}: {CORE}{specifier} is not '>=0.N,<1' (the 0.x compatibility promise)")
    return problems


def check_wheel(path: Path, license_text: bytes, core_version: str | None) -> tuple[str, list[str]]:
    name, version, _, _ = parse_wheel_filename(path.name)
    where = path.name
    with zipfile.ZipFile(path) as wheel:
        files = wheel.namelist()
        dist_info = next(f.split("/")[0] for f in files if f.endswith(".dist-info/METADATA"))
        meta = metadata_of(wheel.read(f"{dist_info}/METADATA").decode())
        problems = check_metadata(meta, where)
        if f"{dist_info}/licenses/LICENSE" not in files:
            problems.append(f"{where}: no {dist_info}/licenses/LICENSE")
        elif wheel.read(f"{dist_info}/licenses/LICENSE") != license_text:
            problems.append(f"{where}: LICENSE differs from the repository's")
        packages = sorted(
            {f.split("/")[0] for f in files if f.endswith("/__init__.py") and f.count("/") == 1}
        )
        if not packages:
            problems.append(f"{where}: no top-level package")
        for package in packages:
            if f"{package}/py.typed" not in files:
                problems.append(f"{where}: {package}/py.typed missing")
            declared = package_version(wheel.read(f"{package}/__init__.py").decode())
            if declared != str(version):
                problems.append(
                    f"{where}: {package}.__version__ is {declared!r}, the metadata says {version}"
                )
        if any(f.endswith((".pyc", ".pyo")) or "/__pycache__/" in f for f in files):
            problems.append(f"{where}: compiled files in the wheel")
        entry_points = f"{dist_info}/entry_points.txt"
        if entry_points in files and "[pytest11]" in wheel.read(entry_points).decode():
            if "Framework :: Pytest" not in (meta.get_all("Classifier") or []):
                problems.append(f"{where}: ships a pytest plugin without 'Framework :: Pytest'")
    if canonicalize_name(name) != CORE:
        problems += check_core_range(meta, core_version, where)
    return canonicalize_name(name), problems


def package_version(init_source: str) -> str | None:
    for node in ast.parse(init_source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return None


def check_sdist(path: Path, license_text: bytes) -> tuple[str, list[str]]:
    name, version = parse_sdist_filename(path.name)
    where = path.name
    with tarfile.open(path) as sdist:
        members = {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if "/" in m.name}
        problems = check_metadata(metadata_of(sdist.extractfile(members["PKG-INFO"]).read().decode()), where)
        if "LICENSE" not in members:
            problems.append(f"{where}: no LICENSE")
        elif sdist.extractfile(members["LICENSE"]).read() != license_text:
            problems.append(f"{where}: LICENSE differs from the repository's")
        if any(n.endswith((".pyc", ".pyo")) or "__pycache__" in n for n in members):
            problems.append(f"{where}: compiled files in the sdist")
    return canonicalize_name(name), problems


def main(dist_dir: Path, license_path: Path) -> int:
    license_text = license_path.read_bytes()
    wheels = sorted(dist_dir.glob("*.whl"))
    sdists = sorted(dist_dir.glob("*.tar.gz"))
    versions = {
        canonicalize_name(parse_wheel_filename(w.name)[0]): str(parse_wheel_filename(w.name)[1])
        for w in wheels
    }
    sdist_versions = {
        canonicalize_name(n): str(v) for n, v in map(parse_sdist_filename, (s.name for s in sdists))
    }
    problems = []
    if versions != sdist_versions:
        problems.append(f"wheels {versions} and sdists {sdist_versions} do not pair up")
    for path in wheels:
        name, found = check_wheel(path, license_text, versions.get(CORE))
        problems += found
        print(f"{'ok' if not found else 'FAILED'}: {name} {versions[name]} wheel")
    for path in sdists:
        name, found = check_sdist(path, license_text)
        problems += found
        print(f"{'ok' if not found else 'FAILED'}: {name} {sdist_versions[name]} sdist")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems or not wheels else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
