#!/usr/bin/env bash
# libmixl.so is the core library: it must not need HDF5 or libyaml (the
# experiment library does), and it must need MPI. mixl-run, which links the
# experiment library, must need HDF5 -- proof that the check can see it.
#   check_needed.sh <libmixl.so> <mixl-run>
set -euo pipefail
lib=$1 app=$2
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
core=$(needed "$lib")
echo "libmixl.so needs: $(echo $core)"
fail=0
if echo "$core" | grep -Ei 'hdf5|yaml'; then
  echo "FAIL: libmixl.so depends on HDF5 or libyaml" >&2
  fail=1
fi
echo "$core" | grep -q '^libmpi' || { echo "FAIL: libmixl.so does not need libmpi" >&2; fail=1; }
app_needed=$(needed "$app")
echo "$app_needed" | grep -q 'hdf5' || { echo "FAIL: $app does not need HDF5: the check sees nothing" >&2; fail=1; }
exit $fail
