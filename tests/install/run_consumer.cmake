# Installs the build tree into a fresh prefix, then checks the install the way
# a user meets it:
#   - the consumer project (pool API) configures, builds and runs against it
#     with find_package(taskfarm);
#   - with the CLI: the cli_consumer project, a runner of its own like the one
#     in docs/JOBFILES.md, builds with find_package(taskfarm COMPONENTS cli),
#     lists its task and the built-in ones, and runs a job file with both;
#   - no installed header includes a header that was not installed;
#   - the docs, the schemas, the example job files (valid, with their data)
#     and the man page are there, and `man` finds the page when man is installed.
#   -DBUILD_DIR=<taskfarm build dir> -DSOURCE_DIR=<consumer source>
#   -DCLI_SOURCE_DIR=<cli_consumer source> -DWITH_CLI=ON|OFF -DWORK_DIR=<scratch>
#   -DINCLUDEDIR= -DBINDIR= -DDOCDIR= -DDATADIR= -DMANDIR=  the build's CMAKE_INSTALL_<dir>s
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

# Runs a command; stops the test with everything it printed when it fails.
# The output is left in `out`, the error output in `err`.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " line "${ARGN}")
    message(FATAL_ERROR "step failed (${rc}): ${line}\n${o}\n${e}")
  endif()
  set(out "${o}" PARENT_SCOPE)
  set(err "${e}" PARENT_SCOPE)
endfunction()

function(expect_contains what text needle)
  string(FIND "${text}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${what}: expected to find \"${needle}\" in:\n${text}")
  endif()
endfunction()

step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# The pool API.
step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build -j2)
step(${WORK_DIR}/build/consumer)
message(STATUS "${out}")

# Every header installed includes only the standard library, the dependencies,
# and headers that were installed too.
set(include_dir ${prefix}/${INCLUDEDIR})
file(GLOB_RECURSE headers RELATIVE ${include_dir} ${include_dir}/*.hpp ${include_dir}/*.h)
list(LENGTH headers n_headers)
if(n_headers EQUAL 0)
  message(FATAL_ERROR "no headers under ${include_dir}")
endif()
foreach(header IN LISTS headers)
  file(STRINGS ${include_dir}/${header} includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
  foreach(line IN LISTS includes)
    if(line MATCHES "\"([^\"]+)\"")
      # A quoted include: found next to the header or under include/.
      get_filename_component(dir ${header} DIRECTORY)
      if(NOT EXISTS ${include_dir}/${dir}/${CMAKE_MATCH_1} AND NOT EXISTS ${include_dir}/${CMAKE_MATCH_1})
        message(FATAL_ERROR "installed header ${header} includes \"${CMAKE_MATCH_1}\", which was not installed")
      endif()
    elseif(line MATCHES "<(taskfarm/[^>]+)>")
      if(NOT EXISTS ${include_dir}/${CMAKE_MATCH_1})
        message(FATAL_ERROR "installed header ${header} includes <${CMAKE_MATCH_1}>, which was not installed")
      endif()
    endif()
  endforeach()
endforeach()

# Documentation and schemas.
set(doc_dir ${prefix}/${DOCDIR})
foreach(file
    ${doc_dir}/README.md ${doc_dir}/docs/JOBFILES.md ${doc_dir}/docs/PERFORMANCE.md
    ${doc_dir}/configs/demo.json ${doc_dir}/configs/jobfile.schema.json
    ${doc_dir}/examples/custom_runner.cpp ${doc_dir}/examples/custom_runner.json
    ${prefix}/${DATADIR}/taskfarm/jobfile.schema.json
    ${prefix}/${DATADIR}/taskfarm/bench.schema.json)
  if(NOT EXISTS ${file})
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()

if(WITH_CLI)
  set(taskfarm ${prefix}/${BINDIR}/taskfarm)
  set(man_page ${prefix}/${MANDIR}/man1/taskfarm.1)
  if(NOT EXISTS ${man_page})
    message(FATAL_ERROR "not installed: ${man_page}")
  endif()

  # The installed job files are valid where they were installed (their data came too).
  file(GLOB_RECURSE job_files ${doc_dir}/configs/*.json)
  list(FILTER job_files EXCLUDE REGEX "schema\\.json$|/data/")
  foreach(job_file IN LISTS job_files)
    step(${taskfarm} validate ${job_file})
  endforeach()

  # A runner of its own, from the install.
  set(runner ${WORK_DIR}/cli_build/area_runner)
  step(${CMAKE_COMMAND} -S ${CLI_SOURCE_DIR} -B ${WORK_DIR}/cli_build -DCMAKE_PREFIX_PATH=${prefix}
       -DCMAKE_BUILD_TYPE=Release -DTASKFARM_CUSTOM_RUNNER_SOURCE=${doc_dir}/examples/custom_runner.cpp)
  step(${CMAKE_COMMAND} --build ${WORK_DIR}/cli_build -j2)
  step(${runner} tasks)
  expect_contains("area_runner tasks" "\n${out}" "\narea: area of a rectangle\n")
  expect_contains("area_runner tasks" "\n${out}" "\nexec: ")  # the built-in tasks were linked in
  expect_contains("area_runner tasks" "\n${out}" "\necho: ")

  # Its task and a built-in one, in forked and in spawned workers (a spawned
  # worker is the runner started again: its tasks register before main()).
  foreach(start fork spawn)
    step(${runner} run ${CLI_SOURCE_DIR}/areas.json --start ${start} --progress never)
    string(REGEX MATCHALL "[^\n]+" lines "${out}")
    set(got "")
    foreach(line IN LISTS lines)
      string(JSON job GET "${line}" job)
      string(JSON status GET "${line}" status)
      if(job STREQUAL "hello")
        string(JSON value GET "${line}" value stdout)
      else()
        string(JSON value GET "${line}" value)
      endif()
      list(APPEND got "${job}/${status}/${value}")
    endforeach()
    set(want "areas/ok/6" "areas/ok/20" "areas/ok/10000000000" "hello/ok/from exec\n")
    if(NOT got STREQUAL want)
      message(FATAL_ERROR "area_runner run areas.json --start ${start}: expected ${want}, got ${got}:\n${out}\n${err}")
    endif()
  endforeach()
  message(STATUS "area_runner: ${got}")

  # The docs' complete example runs its installed job file (which reads data
  # installed beside it: ../configs/examples/data).
  step(${WORK_DIR}/cli_build/custom_runner run ${doc_dir}/examples/custom_runner.json --progress never)
  string(REGEX MATCHALL "[^\n]+" lines "${out}")
  list(LENGTH lines n_lines)
  if(n_lines LESS 4)
    message(FATAL_ERROR "custom_runner run custom_runner.json: expected a result per input, got:\n${out}\n${err}")
  endif()
  foreach(line IN LISTS lines)
    string(JSON status GET "${line}" status)
    if(NOT status STREQUAL "ok")
      message(FATAL_ERROR "custom_runner run custom_runner.json: a task failed: ${line}\n${err}")
    endif()
  endforeach()
  expect_contains("custom_runner run custom_runner.json (summary)" "${err}" "words in all: ")
  message(STATUS "custom_runner: ${n_lines} results, all ok")

  # The page renders without a warning (when groff is installed).
  find_program(GROFF_PROGRAM groff)
  if(GROFF_PROGRAM)
    execute_process(COMMAND ${GROFF_PROGRAM} -man -Tutf8 -ww ${man_page}
                    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE e)
    if(NOT rc EQUAL 0 OR NOT e STREQUAL "")
      message(FATAL_ERROR "groff -man -Tutf8 -ww taskfarm.1 (${rc}) warned:\n${e}")
    endif()
  endif()

  # man finds the page under the prefix (when man is installed).
  find_program(MAN_PROGRAM man)
  if(NOT MAN_PROGRAM)
    message(STATUS "man is not installed: the man page was not rendered")
  else()
    execute_process(COMMAND ${CMAKE_COMMAND} -E env MANWIDTH=80 LC_ALL=C
                            ${MAN_PROGRAM} -M ${prefix}/${MANDIR} -P cat taskfarm
                    RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
    if(rc EQUAL 0 AND o MATCHES "NAME\n +taskfarm . run tasks on a pool of worker processes")
      message(STATUS "man -M <prefix>/share/man taskfarm: NAME section found")
    elseif("${o}${e}" MATCHES "minimized")
      # Debian's minimized images replace man with a script that says so.
      message(STATUS "man is the stub of a minimized system: the man page was not rendered")
    else()
      message(FATAL_ERROR "man -M <prefix>/share/man -P cat taskfarm (${rc}) did not print the NAME section:\n${o}\n${e}")
    endif()
  endif()
endif()
file(REMOVE_RECURSE ${WORK_DIR})
