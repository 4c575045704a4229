//! Keeps Mesa's Vulkan device-select layer from printing
//! `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` on every run.

/// Where `XDG_RUNTIME_DIR` is unset or not a directory, turns off Mesa's
/// device-select layer (`NODEVICE_SELECT=1`) unless the user chose a device with
/// `MESA_VK_DEVICE_SELECT`. The layer only orders the adapters, which wgpu
/// chooses among itself; without a runtime directory it tries to reach a Wayland
/// display anyway, fails, and prints an error that reads like rnnc's own (and
/// costs about 0.4 s on this project's machines).
///
/// It changes the process environment, so call it at the start of `main`,
/// before any thread starts.
pub fn quiet_mesa_without_runtime_dir() {
    let runtime_dir_ok =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    let chosen = ["NODEVICE_SELECT", "MESA_VK_DEVICE_SELECT"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !runtime_dir_ok && !chosen {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}
