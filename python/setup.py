"""Builds the infini package for pip: the native module infini._C comes from the repository's CMake
build (build/, or INFINI_BUILD_DIR), which this configures if needed and brings up to date; the
package then holds it with libinfini.so and libinfini_spm.so beside it ($ORIGIN finds them)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = Path(os.environ.get("INFINI_BUILD_DIR", ROOT / "build")).resolve()


def version():
    return re.search(r"project\(infini VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)


class BuildWithCMake(build_py):
    def run(self):
        if not (BUILD / "CMakeCache.txt").exists():
            subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"])
        subprocess.check_call(["cmake", "--build", str(BUILD), "--target", "infini_python", "-j",
                               str(os.cpu_count() or 1)])
        super().run()
        target = Path(self.build_lib) / "infini"
        built = sorted((BUILD / "python" / "infini").glob("_C*.so"))
        if not built:
            raise RuntimeError(f"{BUILD}/python/infini has no _C module; is INFINI_BUILD_PYTHON off?")
        for path in built + [BUILD / "libinfini_spm.so"]:
            shutil.copy2(path, target / path.name)
        # The module needs libinfini.so.MAJOR (its SONAME): the file itself, not the build's symlink.
        for link in BUILD.glob("libinfini.so.*"):
            if link.is_symlink():
                shutil.copy2(link.resolve(), target / link.name)


class NativeDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel, not a pure-Python one
        return True


setup(
    name="infini",
    version=version(),
    description="Language models with unbounded context (Infini-attention), a C++ engine for PyTorch",
    packages=["infini"],
    package_dir={"infini": "infini"},
    python_requires=">=3.9",
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildWithCMake},
)
