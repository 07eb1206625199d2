#!/bin/bash
# The source tree keeps the shape docs/design.md describes: includes from
# the project root, dependencies one way (fs -> blockdev -> vec, core/
# below levels/ and members/), no two modules including each other, and no
# device keeping a pointer to an event loop (loop.h: it is passed), no
# file over 720 lines and no function over 110.
. "$(dirname "$0")/lib.sh"

out=$(python3 "$E2E_DIR/structure_check.py" "$ROOT") || die "the tree breaks its rules:
$out"
log "structure: $(ls "$ROOT"/vec/*.[ch] "$ROOT"/blockdev/*/*.[ch] "$ROOT"/blockdev/*.[ch] "$ROOT"/fs/*.[ch] "$ROOT"/fs/*/*.[ch] | wc -l) files checked"
