# bpf_object(NAME SOURCE [CPU vN] [HEADERS...]): compiles bpf/SOURCE with clang
# -target bpf (CO-RE, against the checked-in vmlinux.h), generates a libbpf
# skeleton with bpftool, and exposes NAME_skel, an INTERFACE target whose
# include path holds NAME.skel.h. Listing the ABI headers makes an edit to
# them rebuild the object. CPU sets clang's -mcpu for an object that needs
# more than its default instruction set (v3: 32-bit atomics).
find_program(BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(SHUNT_BPF_ARCH x86)
  set(SHUNT_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(SHUNT_BPF_ARCH arm64)
  set(SHUNT_VMLINUX_DIR ${PROJECT_SOURCE_DIR}/bpf/vmlinux/aarch64)
else()
  message(FATAL_ERROR "bpf: no vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}; run bpf/vmlinux/gen.sh")
endif()

function(bpf_object name source)
  cmake_parse_arguments(PARSE_ARGV 2 BPF_OBJ "" "CPU" "")
  set(cpu_flag)
  if(BPF_OBJ_CPU)
    set(cpu_flag -mcpu=${BPF_OBJ_CPU})
  endif()
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf ${cpu_flag} -D__TARGET_ARCH_${SHUNT_BPF_ARCH}
            -Wall -Wextra -Werror -Wno-unused-parameter
            -I${SHUNT_VMLINUX_DIR} -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${obj}
    DEPENDS ${source} ${BPF_OBJ_UNPARSED_ARGUMENTS}
    COMMENT "bpf: compiling ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "bpf: skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${skel_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
