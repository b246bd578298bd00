# The planted faults of the op test (GPT2_OPS_PLANT, listed in tests/ops/backend_ops.cpp): each
# makes one op of the device backend wrong, and test_backend_ops, run on one small case of that
# op, must report it: exit status 1, "test_backend_ops FAILED" and the check that catches the
# fault (tests/ops/expect_failure.sh). One ctest test per fault:
# <prefix>.test_backend_ops.planted.<fault>, with label `label` and environment `env` (a list).
function(gpt2_op_plant_test prefix exe label env fault check)
  set(name ${prefix}.test_backend_ops.planted.${fault})
  add_test(NAME ${name}
           COMMAND bash ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/expect_failure.sh "${check}" "test_backend_ops FAILED" --
                   $<TARGET_FILE:${exe}> ${ARGN})
  set(environment GPT2_OPS_PLANT=${fault} ${env})
  set_tests_properties(${name} PROPERTIES LABELS ${label} SKIP_RETURN_CODE 77 ENVIRONMENT "${environment}")
endfunction()

function(gpt2_op_plant_tests prefix exe label env)
  # dweight overwritten instead of accumulated: the comparison with the CPU's += result.
  gpt2_op_plant_test(${prefix} ${exe} ${label} "${env}" matmul-dweight-overwrite "FAIL +matmul_bwd dweight "
                     --op matmul --filter "N=37 C=64 OC=256")
  # The last element left unwritten: its poison (NaN) fails the comparison.
  gpt2_op_plant_test(${prefix} ${exe} ${label} "${env}" gelu-tail "FAIL +gelu_fwd out .*1 of 7 bad"
                     --op gelu --filter "n=7")
  # One element written past the end: the guard region after the output.
  gpt2_op_plant_test(${prefix} ${exe} ${label} "${env}" residual-overrun "FAIL +device: guards intact .*out"
                     --op residual --filter "n=4803")
  # The second run differs in one bit, well inside the tolerance: only the rerun sees it.
  gpt2_op_plant_test(${prefix} ${exe} ${label} "${env}" attention-nondeterministic
                     "FAIL +rerun: bitwise identical .*attention_bwd"
                     --op attention --dtype fp32 --filter "T=150 HS=64")
endfunction()
