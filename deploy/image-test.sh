#!/usr/bin/env bash
# `make image-test`: build deploy/Dockerfile with buildah (no Docker engine) on an offline Debian base
# made by mmdebstrap, then run the built image's own entrypoint and HEALTHCHECK the way a container
# runtime would (its root filesystem read-only, /tmp and /dev/shm writable, user and environment
# from the image, in a network namespace of its own) and classify through it on loopback.
# Usage (as root: it mounts, chroots and makes namespaces):
#   deploy/image-test.sh IMAGE_TAG prebuilt MODEL_DIR   the image ships MODEL_DIR, built before
#   deploy/image-test.sh IMAGE_TAG built                the image builds its own model (~20 min more)
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:?image tag}
model=${2:?prebuilt or built}
model_dir=${3:-artifacts/sentiment}
[ "$model" = prebuilt ] || [ "$model" = built ] || { echo "model must be prebuilt or built" >&2; exit 2; }
base=localhost/textclf-base:bookworm
# The base the Dockerfile's PYTHON_IMAGE stands for: Debian bookworm's Python 3.11 and venv, useradd,
# and libstdc++ (numpy's and onnxruntime's wheels link it; python:3.11-slim has it through apt).
base_packages=passwd,libstdc++6,python3,python3-venv,python-is-python3
netns=textclf-image-test-$$
started=$SECONDS

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'image-test FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root (mmdebstrap, buildah, mount, chroot and ip netns)"
missing=$(for tool in buildah mmdebstrap; do command -v "$tool" >/dev/null || echo "$tool"; done)
if [ -n "$missing" ]; then
    say "installing $(echo "$missing" | tr '\n' ' ')from Debian's packages"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

scratch=$(mktemp -d)
container=""
service_pid=""
cleanup() {
    [ -n "$service_pid" ] && kill -KILL "$service_pid" 2>/dev/null || true
    ip netns del "$netns" 2>/dev/null || true
    [ -n "$container" ] && buildah rm "$container" >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT

# 1. The base image, made once and kept in buildah's local storage (`buildah rmi` it to remake it).
if buildah inspect --type image "$base" >/dev/null 2>&1; then
    say "base image $base: cached"
else
    say "base image $base: mmdebstrap bookworm ($base_packages), no docs"
    t=$SECONDS
    mmdebstrap --variant=essential --include="$base_packages" -q \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
        bookworm "$scratch/base.tar"
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$scratch/base.tar" /
    buildah commit --quiet --rm "$ctr" "$base" >/dev/null
    rm "$scratch/base.tar"
    echo "made in $((SECONDS - t)) s"
fi

# 2. The image, from the unchanged Dockerfile. RUN steps reach the package index as this host does:
# its CA bundle and pip configuration are mounted for the build only, never copied into a layer.
if [ "$model" = built ]; then what="its model built inside"; else what="the model at $model_dir"; fi
say "building $image with $what"
mounts=()
for path in /etc/ssl/certs/ca-certificates.crt /etc/pip.conf; do
    [ -e "$path" ] && mounts+=(-v "$path:$path:ro")
done
# Where this kind of machine keeps torch's CPU wheel: PyTorch's own site is not reachable from it.
torch_wheels=()
if compgen -G "/opt/wheels/torch-*+cpu-*.whl" >/dev/null; then
    mounts+=(-v /opt/wheels:/opt/wheels:ro)
    torch_wheels=(--build-arg TORCH_WHEELS=/opt/wheels)
fi
t=$SECONDS
# MODEL is given explicitly: buildah 1.28 resolves `FROM model-${MODEL}` to a stage only then.
buildah bud --isolation chroot --format docker --layers --force-rm --quiet "${mounts[@]}" "${torch_wheels[@]}" \
    --build-arg PYTHON_IMAGE="$base" --build-arg MODEL="$model" --build-arg MODEL_DIR="$model_dir" \
    -f deploy/Dockerfile -t "$image" . >/dev/null
build_seconds=$((SECONDS - t))
echo "built in $build_seconds s"

# 3. What the image says about itself, read from its configuration as a runtime would.
config=$(buildah inspect --type image "$image")
eval "$(python3 - "$config" <<'EOF'
import json, shlex, sys
c = json.loads(sys.argv[1])["Docker"]["config"]
test = c["Healthcheck"]["Test"]
assert test[0] == "CMD", test
print("user=" + shlex.quote(c["User"]))
print("workdir=" + shlex.quote(c["WorkingDir"]))
print("stop_signal=" + shlex.quote(c.get("StopSignal") or "SIGTERM"))
for name, words in [("entrypoint", c["Entrypoint"] + (c.get("Cmd") or [])), ("healthcheck", test[1:]),
                    ("env", c["Env"])]:
    print(f"{name}=(" + " ".join(map(shlex.quote, words)) + ")")
port = next(e.split("=", 1)[1] for e in c["Env"] if e.startswith("TEXTCLF_PORT="))
print("port=" + shlex.quote(port))
EOF
)"
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', not 10001:10001"
echo "user $user, entrypoint ${entrypoint[*]}, healthcheck ${healthcheck[*]}, port $port"

container=$(buildah from --quiet "$image")
root=$(buildah mount "$container")

say "checking the runtime image's contents"
site=$(echo "$root"/opt/venv/lib/python3*/site-packages)
[ -d "$site" ] || fail "no venv at /opt/venv"
build_only=$(ls "$site" | grep -i -E '^(torch|transformers|onnx)([-_.]|$)' || true)
[ -z "$build_only" ] || fail "build-only packages in the runtime image: $build_only"
compilers=$(ls "$root/usr/bin" "$root/usr/local/bin" | grep -E '^(x86_64-linux-gnu-)?(gcc|g\+\+|cc|c\+\+|clang)(-[0-9.]+)?$' || true)
[ -z "$compilers" ] || fail "a compiler is in the runtime image: $compilers"
echo "no torch, no compiler"

# 4. Run it: a network namespace with only loopback; a mount namespace where the image's root is
# read-only and /tmp and /dev/shm are fresh tmpfs; a PID namespace where the entrypoint is PID 1.
ip netns add "$netns"
ip -n "$netns" link set lo up
in_netns() { ip netns exec "$netns" "$@"; }
# Run a command of the image inside its namespaces, as `user` with the image's environment.
contained() {
    local as=$1
    shift
    in_netns unshare --mount --pid --fork --kill-child sh -euc '
        root=$1; as=$2; shift 2
        mount --bind "$root" "$root"
        mount -t proc proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount -t tmpfs -o mode=755,size=1m tmpfs "$root/dev"
        for dev in null zero random urandom; do touch "$root/dev/$dev"; mount --bind "/dev/$dev" "$root/dev/$dev"; done
        mkdir "$root/dev/shm" && mount -t tmpfs -o mode=1777,size=64m tmpfs "$root/dev/shm"
        mount -t tmpfs -o mode=1777,size=256m tmpfs "$root/tmp"
        mount -o remount,bind,ro "$root"
        exec chroot --userspec="$as" "$root" "$@"
    ' contained "$root" "$as" env -i "${env[@]}" sh -c 'cd "$1" && shift && exec "$@"' sh "$workdir" "$@"
}
health() { contained "$user" "${healthcheck[@]}" >/dev/null 2>&1; }

say "running the entrypoint (read-only root)"
health && fail "the HEALTHCHECK passed with nothing running"
contained "$user" "${entrypoint[@]}" >"$scratch/service.log" 2>&1 &
runner=$!
t=$SECONDS
until health; do
    kill -0 "$runner" 2>/dev/null || { cat "$scratch/service.log"; fail "the entrypoint exited"; }
    [ $((SECONDS - t)) -lt 120 ] || { cat "$scratch/service.log"; fail "not healthy after 120 s"; }
    sleep 1
done
echo "HEALTHCHECK passed after $((SECONDS - t)) s"
# The entrypoint's process, as the host sees it: the one in this test's network namespace.
service_pid=$(for pid in $(pgrep -f -x "${entrypoint[*]}"); do
    [ "$(ip netns identify "$pid")" = "$netns" ] && echo "$pid"; done)
[ -n "$service_pid" ] || fail "no process '${entrypoint[*]}' in the network namespace"
uid=$(awk '/^Uid:/ {print $2}' "/proc/$service_pid/status")
[ "$uid" = "10001" ] || fail "the service runs as uid $uid"
echo "service pid $service_pid runs as uid $uid"

say "classifying through it on loopback"
answer=$(in_netns curl -sS --max-time 10 -H 'Content-Type: application/json' \
    -d '{"text": "I love this, it works great"}' "http://127.0.0.1:$port/v1/classify")
echo "$answer"
# The version served is the image's model's; a pre-built one keeps the version it was built with.
shipped="$root/opt/textclf/model/manifest.json"
[ "$model" = built ] || cmp -s "$shipped" "$model_dir/manifest.json" || fail "the image's manifest is not $model_dir's"
python3 - "$answer" "$shipped" <<'EOF'
import json, sys
answer, manifest = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
assert answer["label"] in manifest["labels"], answer
assert answer["model"] == {"name": manifest["name"], "version": manifest["version"]}, answer["model"]
print(f"served {manifest['name']} {manifest['version']}, the version in the image's manifest")
EOF
metrics=$(in_netns curl -sS --max-time 10 "http://127.0.0.1:$port/metrics")
grep -q '^textclf_request_duration_seconds_count' <<<"$metrics" || fail "no request counted on /metrics"
# Even root cannot write outside /tmp: the service above ran with nothing else writable.
refused=$(contained 0:0 sh -c 'touch /opt/textclf/written' 2>&1 || true)
grep -q "Read-only file system" <<<"$refused" || fail "the root filesystem was writable: '$refused'"
echo "/metrics counts the request; the root filesystem is read-only"

say "stopping it with the image's STOPSIGNAL, $stop_signal"
kill -s "${stop_signal#SIG}" "$service_pid"
t=$SECONDS
while kill -0 "$service_pid" 2>/dev/null; do
    [ $((SECONDS - t)) -lt 60 ] || fail "still running 60 s after SIGTERM"
    sleep 0.5
done
wait "$runner" || fail "the entrypoint exited with status $? after $stop_signal"
service_pid=""
health && fail "the HEALTHCHECK passed after the service stopped"
echo "exited 0 in $((SECONDS - t)) s; the HEALTHCHECK fails again"

say "summary"
size() { buildah images --format '{{.Size}}' "$1"; }
echo "image $image: $(size "$image") (its base $base: $(size "$base"))"
echo "image build ${build_seconds} s; whole image-test $((SECONDS - started)) s"
echo "image-test passed"
