# `cmake --install build --prefix P` installs the tools (bin/), the runtime
# library and the dialect and pass libraries (lib/), the public headers and
# the generated ones (include/moe), and the CMake package
# (lib/cmake/MoEMLIR: MoEMLIRConfig.cmake, its version file and the imported
# targets) so that other projects can find_package(MoEMLIR).

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MOE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/MoEMLIR)

# The headers of the dialect, its passes and the C API, and the generated
# ones (.h.inc, Version.h). The runtime's C++ headers are internal to the
# tools: libMoERuntime.so exports the C API only.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/moe
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT MoEHeaders
  FILES_MATCHING PATTERN "*.h" PATTERN "*.td"
  PATTERN "Runtime" EXCLUDE)
install(DIRECTORY ${PROJECT_BINARY_DIR}/include/moe
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT MoEHeaders
  FILES_MATCHING PATTERN "*.h" PATTERN "*.h.inc"
  PATTERN "CMakeFiles" EXCLUDE)

# Consumers of the installed libraries find the headers through the targets.
foreach(lib MoEDialect MoETransforms MoECPUCodegen MoEToLinalg MoEPipelines MoEUtils)
  target_include_directories(${lib} INTERFACE
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
endforeach()

# add_mlir_library installs the dialect and pass libraries into the export
# set MLIRTargets of this project; it becomes the Compiler component.
install(EXPORT MLIRTargets NAMESPACE MoEMLIR::
  FILE MoEMLIRCompilerTargets.cmake
  DESTINATION ${MOE_INSTALL_CMAKEDIR} COMPONENT MoECMake)
install(EXPORT MoEMLIRRuntimeTargets NAMESPACE MoEMLIR::
  FILE MoEMLIRRuntimeTargets.cmake
  DESTINATION ${MOE_INSTALL_CMAKEDIR} COMPONENT MoECMake)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/MoEMLIRConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/MoEMLIRConfig.cmake
  INSTALL_DESTINATION ${MOE_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/MoEMLIRConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/cmake/MoEMLIRConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/MoEMLIRConfigVersion.cmake
  DESTINATION ${MOE_INSTALL_CMAKEDIR} COMPONENT MoECMake)
