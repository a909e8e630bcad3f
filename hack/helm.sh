#!/usr/bin/env bash
# hack/helm.sh [path|build|version]: see hack/tool.sh.
exec "$(dirname "${BASH_SOURCE[0]}")/tool.sh" helm "$@"
