#!/usr/bin/env bash
# hack/minio.sh [path|build|version]: see hack/tool.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/tool.sh" minio "$@"
