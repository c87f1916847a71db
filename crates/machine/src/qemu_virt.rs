//! The devices of the board `--arch arm64` machines are: QEMU's `virt`
//! (hw/arm/virt.c `base_memmap`; the kernel finds them in the device tree
//! QEMU builds), as started by
//!
//! ```text
//! qemu-system-aarch64 -M virt -cpu cortex-a57 -smp N -m RAM -kernel Image \
//!   -device virtio-blk-device,drive=hd0 -device virtio-net-device,netdev=n0
//! ```
//!
//! that is, the default GICv2 with its GICv2m MSI frame, a PL011 UART, the
//! 32 virtio-mmio transports (QEMU puts the first `-device` on the last
//! transport, the second on the one before), and the generic PCIe host
//! bridge with its ECAM above 4 GiB (`highmem-ecam`, 256 buses). The PL031
//! RTC, the PL061 GPIO and fw_cfg are left out.
//!
//! The ioremaps are the ones a booted kernel keeps: `gic_of_setup`'s of the
//! distributor and CPU interface and `gicv2m_init_one`'s of the MSI frame
//! (init_IRQ, before smp_init); then, at the initcalls, `pl011_probe`'s,
//! `pci_ecam_create`'s of the whole ECAM window, and `virtio_mmio_probe`'s
//! of the two transports with a device (the probe of an empty transport
//! reads device ID 0 and gives its mapping back).

/// The caller vmallocinfo names for every arm64 ioremap: the generic
/// `generic_ioremap_prot` records its own return address, which is in
/// arm64's `__ioremap_prot`, whichever driver asked. The offset is that of
/// Debian's arm64 6.12.100 kernel (see [`crate::kobjects::ARM64_CALLERS`]).
pub const IOREMAP_CALLER: &str = "__ioremap_prot+0x70/0xb8";

/// A device's register window: physical start and size in bytes.
pub type Window = (u64, u64);

/// GIC distributor (`VIRT_GIC_DIST`).
pub const GIC_DIST: Window = (0x0800_0000, 0x1_0000);
/// GIC CPU interface (`VIRT_GIC_CPU`).
pub const GIC_CPU: Window = (0x0801_0000, 0x1_0000);
/// GICv2m MSI frame (`VIRT_GIC_V2M`).
pub const GIC_V2M: Window = (0x0802_0000, 0x1000);
/// PL011 UART (`VIRT_UART`).
pub const UART: Window = (0x0900_0000, 0x1000);
/// First virtio-mmio transport (`VIRT_MMIO`); there are
/// [`VIRTIO_MMIO_TRANSPORTS`] of [`VIRTIO_MMIO_SIZE`] bytes each.
pub const VIRTIO_MMIO_BASE: u64 = 0x0a00_0000;
/// Bytes of one virtio-mmio transport.
pub const VIRTIO_MMIO_SIZE: u64 = 0x200;
/// `NUM_VIRTIO_TRANSPORTS`.
pub const VIRTIO_MMIO_TRANSPORTS: u64 = 32;
/// PCIe ECAM above 4 GiB (`VIRT_HIGH_PCIE_ECAM`): 1 MiB per bus, 256 buses.
pub const PCIE_ECAM: Window = (0x40_1000_0000, 0x1000_0000);

/// The virtio-mmio transport `i` (0 = lowest address).
pub const fn virtio_mmio(i: u64) -> Window {
    (VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE, VIRTIO_MMIO_SIZE)
}

/// Every device window of the board: where ioremap may map.
pub fn device_windows() -> Vec<Window> {
    let virtio = (VIRTIO_MMIO_BASE, VIRTIO_MMIO_TRANSPORTS * VIRTIO_MMIO_SIZE);
    vec![GIC_DIST, GIC_CPU, GIC_V2M, UART, virtio, PCIE_ECAM]
}

/// What `init_IRQ` maps (`irqchip_init` → `gic_of_init`), in order.
pub const IRQCHIP_IOREMAPS: [Window; 3] = [GIC_DIST, GIC_CPU, GIC_V2M];

/// What the drivers' probes keep mapped after the initcalls, in order: the
/// UART, the ECAM window, then virtio-blk's and virtio-net's transports.
pub const DRIVER_IOREMAPS: [Window; 4] = [
    UART,
    PCIE_ECAM,
    virtio_mmio(VIRTIO_MMIO_TRANSPORTS - 1),
    virtio_mmio(VIRTIO_MMIO_TRANSPORTS - 2),
];
