# A stand-in for the few parts of Conan 2's Python API that conanfile.py uses, for loading the
# recipe where Conan cannot be installed: install() puts modules named conan, conan.errors and
# conan.tools.* in sys.modules. They record what the recipe asks for; they build nothing.
import collections
import sys
import types


class ConanInvalidConfiguration(Exception):
    pass


class Values:
    """Options or settings: attributes, and get_safe() as Conan's have."""

    def __init__(self, values):
        self.__dict__.update(values)

    def get_safe(self, name, default=None):
        return self.__dict__.get(name, default)


class CppInfo:
    """A package's or a component's cpp_info: properties, and the fields the recipe sets."""

    def __init__(self):
        self.properties = {}
        self.components = collections.defaultdict(CppInfo)
        self.libs, self.defines, self.requires, self.system_libs = [], [], [], []
        self.libdirs, self.bindirs, self.includedirs = ["lib"], ["bin"], ["include"]

    def set_property(self, name, value):
        self.properties[name] = value

    def get_property(self, name):
        return self.properties.get(name)


class ConanFile:
    """Options are the recipe's default_options for its own names, updated with `options`."""

    def __init__(self, recipe_folder, options=None, os="Linux"):
        own = {name: value for name, value in self.default_options.items() if "/" not in name}
        own.update(options or {})
        self.options = Values(own)
        self.settings = Values({"os": os, "build_type": "Release"})
        self.recipe_folder = recipe_folder
        self.cpp_info = CppInfo()
        self.requirements_asked, self.tool_requirements_asked = [], []

    def requires(self, reference):
        self.requirements_asked.append(reference)

    def tool_requires(self, reference):
        self.tool_requirements_asked.append(reference)


class CMakeToolchain:
    generated = None

    def __init__(self, conanfile):
        self.cache_variables = {}
        self.variables = {}

    def generate(self):
        CMakeToolchain.generated = self


class Generator:
    generated = []

    def __init__(self, conanfile):
        pass

    def generate(self):
        Generator.generated.append(type(self).__name__)


class CMakeDeps(Generator):
    pass


class PkgConfigDeps(Generator):
    pass


class CMake:
    def __init__(self, conanfile):
        raise NotImplementedError("the stand-in builds nothing")


def load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def install():
    def module(name, **members):
        m = types.ModuleType(name)
        m.__dict__.update(members)
        sys.modules[name] = m
        return m

    module("conan", ConanFile=ConanFile)
    module("conan.errors", ConanInvalidConfiguration=ConanInvalidConfiguration)
    module("conan.tools")
    module("conan.tools.build", check_min_cppstd=lambda conanfile, version: None, can_run=lambda conanfile: True)
    module("conan.tools.cmake", CMake=CMake, CMakeDeps=CMakeDeps, CMakeToolchain=CMakeToolchain,
           cmake_layout=lambda conanfile, **kwargs: None)
    module("conan.tools.files", load=load, copy=lambda *args, **kwargs: None,
           rmdir=lambda conanfile, path: None)
    module("conan.tools.gnu", PkgConfigDeps=PkgConfigDeps)
