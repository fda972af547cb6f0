# Loads conanfile.py with the stand-in for Conan (stand_in.py) and checks it against the project:
# set_version() reads CMakeLists.txt's version; with the options of what this build has (its
# COMPONENTS, comma-separated, and CLUSTERCTL), package_info() declares the CMake targets its
# install (PREFIX) exports, each component requiring what its target links and defining what it
# defines; validate() refuses websocket without http. Prints the cache variables generate() sets,
# one -D argument a line, for the configure that follows.
# Usage: check_recipe.py RECIPE_DIR VERSION PREFIX COMPONENTS CLUSTERCTL
import glob
import importlib.util
import os
import re
import sys

import stand_in


def fail(message):
    sys.exit(f"conanfile.py: {message}")


def exported_targets(prefix):
    """{target: (links, defines, library name)} from the install's *Targets*.cmake files."""
    texts = []
    for path in glob.glob(os.path.join(prefix, "lib*", "cmake", "cluster", "cluster*Targets*.cmake")):
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    targets = {name: ([], [], None) for text in texts for name in re.findall(r"add_library\((cluster::\w+) ", text)}
    for text in texts:
        for name, body in re.findall(r"set_target_properties\((cluster::\w+) PROPERTIES\n(.*?)\n\s*\)", text, re.S):
            links, defines, library = targets[name]
            if m := re.search(r'INTERFACE_LINK_LIBRARIES "([^"]*)"', body):
                links += m.group(1).split(";")
            if m := re.search(r'INTERFACE_COMPILE_DEFINITIONS "([^"]*)"', body):
                defines += m.group(1).split(";")
            if m := re.search(r'IMPORTED_LOCATION_\w+ "[^"]*/lib(\w+)\.a"', body):
                library = m.group(1)
            targets[name] = (links, defines, library)
    return targets


recipe_dir, version, prefix, built, clusterctl = sys.argv[1:6]
built = built.split(",")
stand_in.install()
spec = importlib.util.spec_from_file_location("conanfile", os.path.join(recipe_dir, "conanfile.py"))
recipe_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe_module)
recipe_class = next(c for c in vars(recipe_module).values()
                    if isinstance(c, type) and issubclass(c, stand_in.ConanFile) and c is not stand_in.ConanFile)

recipe = recipe_class(recipe_dir)
recipe.set_version()
if recipe.version != version:
    fail(f"set_version() gives {recipe.version}; CMakeLists.txt says {version}")

options = {f"with_{c}": c in built for c in ("asio", "http", "websocket", "redis")}
options["tools"] = clusterctl.upper() in ("ON", "TRUE", "1", "YES")
recipe = recipe_class(recipe_dir, options)
recipe.validate()
recipe.requirements()
recipe.build_requirements()
recipe.generate()
recipe.package_info()

# The bundled llhttp (cluster::llhttp) is an install's own copy of Debian's llhttp sources;
# with Conan, llhttp is a package of its own (llhttp::llhttp), required by the http component.
exported = exported_targets(prefix)
exported.pop("cluster::llhttp", None)
components = {c.get_property("cmake_target_name"): (name, c) for name, c in recipe.cpp_info.components.items()}
if sorted(components) != sorted(exported):
    fail(f"package_info() declares {sorted(components)}; the install exports {sorted(exported)}")
required_packages = {re.match(r"[\w-]+", r).group(0) for r in recipe.requirements_asked}
for target, (links, defines, library) in exported.items():
    name, component = components[target]
    for link in links:
        if link in components and components[link][0] not in component.requires:
            fail(f"{target} links {link}, but component {name} does not require {components[link][0]}")
    for requirement in component.requires:
        package = requirement.split("::")[0] if "::" in requirement else None
        if package is not None and package not in required_packages:
            fail(f"component {name} requires {requirement}, a package requirements() does not ask for")
        if package is None and requirement not in recipe.cpp_info.components:
            fail(f"component {name} requires {requirement}, which is no component")
    if sorted(component.defines) != sorted(d for d in defines if d):
        fail(f"component {name} defines {component.defines}; {target} defines {defines}")
    if component.libs != ([library] if library else []):
        fail(f"component {name} has the libraries {component.libs}; {target} is {library}")

refused = recipe_class(recipe_dir, dict(options, with_websocket=True, with_http=False))
try:
    refused.validate()
    fail("validate() accepts with_websocket without with_http")
except stand_in.ConanInvalidConfiguration:
    pass

for name, value in stand_in.CMakeToolchain.generated.cache_variables.items():
    print(f"-D{name}={'ON' if value is True else 'OFF' if value is False else value}")
