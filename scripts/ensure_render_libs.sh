#!/usr/bin/env bash
# Make Blender's Workbench engine render headless on Debian/Ubuntu: it needs EGL and Mesa's software OpenGL
# (libegl1 libegl-mesa0 libgl1-mesa-dri). Installs them with apt-get when they are missing and that is possible
# (running as root, or password-less sudo). Never fails: without them the preview is rendered with Cycles on the CPU.
set -u

PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri)
say() { echo "render libraries: $*"; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian-based system; previews use Workbench if OpenGL works headless, otherwise Cycles."
    exit 0
fi

missing=()
for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    say "${PACKAGES[*]} are installed (Workbench previews)."
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    say "missing ${missing[*]} and no permission to install them; previews fall back to Cycles (slower)."
    say "to install: sudo apt-get install ${missing[*]}"
    exit 0
fi

say "installing ${missing[*]} ..."
install() {
    timeout 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
if install || { timeout 600 "${sudo[@]}" apt-get update -qq >/dev/null && install; }; then
    say "installed ${missing[*]}."
else
    say "apt-get could not install ${missing[*]}; previews fall back to Cycles (slower)."
fi
exit 0
