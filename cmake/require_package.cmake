# gpt2_require_package(<Debian package> <find_package arguments...>)
#
# find_package for a dependency the build cannot do without. When it is missing, configuration
# stops with one line naming the Debian package and the script that installs every dependency,
# instead of CMake's own multi-paragraph error. Hiding a package from a configure run
# (-DCMAKE_DISABLE_FIND_PACKAGE_<Name>=ON) shows the message (tests/cli/missing_packages.sh).
# The message starts with a space, so CMake prints it as one unwrapped line.
function(gpt2_missing_package debian_package what)
  message(FATAL_ERROR " gpt2engine: ${what} found nothing: install the Debian package ${debian_package}, "
                      "or run scripts/install_deps.sh, which installs every package the build needs")
endfunction()

macro(gpt2_require_package debian_package name)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    string(REPLACE ";" " " _gpt2_args "${name};${ARGN}")
    string(STRIP "${_gpt2_args}" _gpt2_args)
    gpt2_missing_package(${debian_package} "find_package(${_gpt2_args})")
  endif()
endmacro()

# gpt2_require_pkg_config(<Debian package> <prefix> <pkg-config module>): the same for a library
# found through pkg-config; defines the IMPORTED target PkgConfig::<prefix>.
macro(gpt2_require_pkg_config debian_package prefix module)
  gpt2_require_package(pkg-config PkgConfig)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
  if(NOT ${prefix}_FOUND)
    gpt2_missing_package(${debian_package} "pkg-config ${module}")
  endif()
endmacro()
