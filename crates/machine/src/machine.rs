//! A simulated computer: firmware map, RAM, CPUs and nodes, booted the way
//! Linux boots (firmware map -> memblock -> memmap -> zones -> buddy).
//! Mirrors arch/x86/kernel/setup.c `setup_arch` and init/main.c `mm_core_init`.

use mm::arch::layout::AddressSpaceLayout;
use mm::arch::pte::PagingMode;
use mm::arch::Arch;
use mm::highmem::Highmem;
use mm::memblock::Memblock;
use mm::mm_init::{free_area_init, BootParams, KernelImage, SystemHash};
use mm::page_alloc::{CpuId, PageAlloc};
use mm::percpu::PercpuConfig;
use mm::pgalloc::PgtableFrames;
use mm::pgtable::PageTable;
use mm::printk::Printk;
use mm::slab_common::{Kmem, SlabAllocator};
use mm::types::{PhysAddr, PAGE_SIZE};
use mm::vmalloc::{IoResources, Vmalloc};

use crate::config::{ConfigError, MachineConfig};
use crate::e820::{self, E820Entry, E820Type};
use crate::ram::Ram;

/// Bytes of `pg_data_t` per node (NODE_DATA, as this machine's kernel logs it).
const NODE_DATA_BYTES: u64 = 0x2ab00;
/// The per-CPU first chunk of the kernel our machines run; 32-bit x86
/// allocates it in pages rather than 2 MiB atoms.
fn percpu_config(arch: Arch) -> PercpuConfig {
    let cfg = PercpuConfig::LINUX_6_18_X86_64;
    if arch.is_32bit() {
        PercpuConfig {
            atom_size: PAGE_SIZE,
            ..cfg
        }
    } else {
        cfg
    }
}

/// The kernel image placed at boot: where Linux x86-64 loads it (16 MiB,
/// CONFIG_PHYSICAL_START) with the section sizes and layout of the kernel
/// our machines run (tests/host/iomem.txt: text 0x01000000-0x02209987,
/// rodata from 0x02400000, data 0x03000000-0x0327c0ff, bss from 0x03b34000;
/// 3728K of init sections, as the "Memory:" line says); machines under
/// 256 MiB get a small 4 MiB image at 1 MiB, its sections back to back.
pub fn kernel_image(arch: Arch, ram: u64) -> KernelImage {
    let base = arch.dram_base();
    if ram >= 256 << 20 {
        KernelImage {
            start: PhysAddr(base + (16 << 20)),
            code: 0x120_9988,
            rwdata: 0x27_c100,
            rodata: 0xa0_a000,
            init: 3728 << 10,
            after_init: 0x3b3_4000 - 0x362_1000,
            bss: 1168 << 10,
            align: 2 << 20,
        }
    } else {
        KernelImage {
            start: PhysAddr(base + (1 << 20)),
            code: 2 << 20,
            rwdata: 512 << 10,
            rodata: 1 << 20,
            init: 256 << 10,
            after_init: 0,
            bss: 256 << 10,
            align: 0,
        }
    }
}

/// A named physical range for /proc/iomem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive, as /proc/iomem prints it).
    pub end: u64,
    /// Name.
    pub name: String,
    /// Nesting depth.
    pub depth: usize,
}

/// Why a machine could not boot.
#[derive(Debug)]
pub enum BootError {
    /// The configuration is impossible.
    Config(ConfigError),
    /// The host refused the RAM mapping.
    Host(std::io::Error),
    /// The memory manager failed to initialise.
    Mm(mm::mm_init::BootError),
}

impl std::fmt::Display for BootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BootError::Config(e) => write!(f, "bad machine configuration: {e}"),
            BootError::Host(e) => write!(f, "cannot map simulated RAM on the host: {e}"),
            BootError::Mm(e) => write!(f, "boot failed: {e}"),
        }
    }
}

impl std::error::Error for BootError {}

/// A booted machine.
pub struct Machine {
    /// Its configuration.
    pub(crate) config: MachineConfig,
    /// The firmware map after Linux's fix-ups.
    pub(crate) e820: Vec<E820Entry>,
    /// memblock's final state (retired after the hand-over).
    pub(crate) memblock: Memblock,
    /// The kernel image.
    pub(crate) image: KernelImage,
    /// The kernel's own page tables (direct map of lowmem, the shared kernel
    /// half of every process on x86; arm64's `swapper_pg_dir`, the TTBR1
    /// table). Always `Some` after boot.
    pub(crate) kernel_pt: Option<PageTable>,
    /// The vmalloc area (vmalloc, vmap, ioremap).
    pub(crate) vmalloc: Vmalloc,
    /// kmap state: persistent and atomic kmaps of HighMem (32-bit x86).
    pub(crate) highmem: Option<Highmem>,
    /// The processes, by pid (see [`crate::process`]).
    pub(crate) processes: std::collections::BTreeMap<u32, crate::process::Process>,
    /// Each CPU's MMU and TLB.
    pub(crate) cpus: Vec<crate::mmu::Mmu>,
    /// Process bookkeeping: next pid, the zero page, exec parameters.
    pub(crate) tasks: crate::process::TaskState,
    /// The slab allocator: kmalloc and the kernel's object caches.
    pub(crate) slab: SlabAllocator,
    /// The reverse map and the list of address spaces.
    pub(crate) rmap: std::sync::Arc<mm::rmap::Rmap>,
    /// The page cache.
    pub(crate) cache: std::sync::Arc<mm::filemap::PageCache>,
    /// Swap devices and the swap cache.
    pub(crate) swap: std::sync::Arc<mm::swap_state::SwapState>,
    /// Page reclaim: kswapd's work, direct reclaim (plugged into `pa`),
    /// drop_caches.
    pub(crate) reclaim: std::sync::Arc<mm::vmscan::Reclaimer>,
    /// The in-memory file system for writable files.
    pub(crate) tmpfs: crate::fs::Tmpfs,
    /// The page allocator.
    pub(crate) pa: PageAlloc,
    ram: Ram,
}

impl Machine {
    /// Boots a machine.
    pub fn boot(config: MachineConfig) -> Result<Machine, BootError> {
        config.validate().map_err(BootError::Config)?;
        let arch = config.arch;
        let log = Printk::new();
        let bios = e820::firmware_map(arch, config.ram);
        for l in e820::boot_log_lines(arch, &bios) {
            log.log(l);
        }
        let (map, fixups) = e820::trim_bios_range(arch, &bios);
        for l in fixups {
            log.log(l);
        }
        let top = map
            .iter()
            .filter(|e| e.kind == E820Type::Usable)
            .map(|e| e.end)
            .max()
            .unwrap_or(0);
        if arch != Arch::Arm64 {
            // e820__end_of_ram_pfn: x86 only.
            mm::printk!(
                log,
                "last_pfn = {:#x} max_arch_pfn = {:#x}",
                top >> 12,
                arch.max_phys_bytes() >> 12
            );
        }
        let ram = Ram::new(top).map_err(BootError::Host)?;
        if config.populate_ahead {
            ram.populate_ahead().map_err(BootError::Host)?;
        }

        // memblock: usable RAM split into nodes by address.
        let mut mb = Memblock::new();
        let usable: Vec<&E820Entry> = map.iter().filter(|e| e.kind == E820Type::Usable).collect();
        let total: u64 = usable.iter().map(|e| e.end - e.start).sum();
        let per_node = total.div_ceil(config.nodes as u64);
        let (mut nid, mut in_node) = (0u32, 0u64);
        for e in &usable {
            let mut s = e.start;
            while s < e.end {
                let take = (e.end - s).min(per_node - in_node);
                mb.add_node(PhysAddr(s), take, nid).expect("memblock add");
                s += take;
                in_node += take;
                if in_node == per_node && nid + 1 < config.nodes {
                    nid += 1;
                    in_node = 0;
                }
            }
        }
        if config.nodes == 1 {
            // arm64's drivers/base/arch_numa.c prints with pr_fmt "NUMA: ".
            let prefix = if arch == Arch::Arm64 { "NUMA: " } else { "" };
            mm::printk!(log, "{}No NUMA configuration found", prefix);
            mm::printk!(
                log,
                "{}Faking a node at [mem {:#018x}-{:#018x}]",
                prefix,
                arch.dram_base(),
                top - 1
            );
        } else {
            for n in 0..config.nodes {
                let r = mb.pfn_ranges(Some(n));
                if let (Some(f), Some(l)) = (r.first(), r.last()) {
                    mm::printk!(
                        log,
                        "NUMA: Node {} [mem {:#018x}-{:#018x}]",
                        n,
                        f.0.phys().0,
                        l.1.phys().0 - 1
                    );
                }
            }
        }
        // Reservations made before the hand-over.
        if arch != Arch::Arm64 {
            // x86 keeps the first MiB for firmware and real mode (setup_arch).
            mb.reserve(PhysAddr(0), 1 << 20).expect("reserve low 1M");
        }
        let image = kernel_image(arch, config.ram);
        mb.reserve(image.start, image.size().next_multiple_of(PAGE_SIZE))
            .expect("reserve kernel");
        for n in 0..config.nodes {
            let pa = mb
                .alloc_try_nid(
                    NODE_DATA_BYTES,
                    64,
                    PhysAddr(0),
                    mm::memblock::MEMBLOCK_ALLOC_ANYWHERE,
                    n,
                )
                .ok_or(BootError::Mm(mm::mm_init::BootError::NoMemory))?;
            mm::printk!(
                log,
                "NODE_DATA({}) allocated [mem {:#010x}-{:#010x}]",
                n,
                pa.0,
                pa.0 + NODE_DATA_BYTES - 1
            );
        }
        // The early hash tables: sized by memory unless the command line
        // says (dhash_entries=/ihash_entries=); with several nodes Linux
        // spreads them later with vmalloc (hashdist), which lmm leaves out.
        let system_hashes = if config.nodes == 1 {
            vec![
                SystemHash::dentry(config.dhash_entries),
                SystemHash::inode(config.ihash_entries),
            ]
        } else {
            Vec::new()
        };
        let params = BootParams {
            arch,
            nr_nodes: config.nodes,
            cpu_node: config.cpu_node(),
            distance: config.distance_table(),
            percpu: Some(percpu_config(arch)),
            system_hashes,
            trace: config.trace.0.clone(),
            progress: config.boot_progress.clone(),
        };
        let pa = free_area_init(&mut mb, ram.direct_map(), &params, log).map_err(BootError::Mm)?;
        let lowmem_end = if arch.is_32bit() {
            top.min(mm::arch::X86_32_MAXMEM_PFN << 12)
        } else {
            top
        };
        let mode = PagingMode::for_arch(arch, config.la57);
        let mut frames = PgtableFrames {
            pa: &pa,
            cpu: CpuId(0),
        };
        // init_mem_mapping: the first MiB, then each RAM range; arm64's
        // map_mem maps the memblock memory ranges only.
        let mut ranges = if mode.split_roots() {
            Vec::new()
        } else {
            vec![(PhysAddr(0), PhysAddr(1 << 20))]
        };
        ranges.extend(
            map.iter()
                .filter(|e| e.kind == E820Type::Usable)
                .map(|e| (PhysAddr(e.start.max(1 << 20)), PhysAddr(e.end))),
        );
        let mut kernel_pt = Some(
            PageTable::new_kernel_ranges(
                pa.direct_map(),
                &mut frames,
                mode,
                PhysAddr(lowmem_end),
                &ranges,
            )
            .map_err(|_| BootError::Mm(mm::mm_init::BootError::NoMemory))?,
        );
        let layout = AddressSpaceLayout::new(mode, lowmem_end);
        let mut vmalloc = Vmalloc::new(layout);
        let range = |e: &E820Entry| (PhysAddr(e.start), PhysAddr(e.end));
        vmalloc.set_iomem(IoResources {
            ram: map
                .iter()
                .filter(|e| e.kind == E820Type::Usable)
                .map(range)
                .collect(),
            mmio: if arch == Arch::Arm64 {
                crate::qemu_virt::device_windows()
                    .into_iter()
                    .map(|(s, n)| (PhysAddr(s), PhysAddr(s + n)))
                    .collect()
            } else {
                map.iter()
                    .filter(|e| e.kind == E820Type::Reserved)
                    .map(range)
                    .collect()
            },
        });
        let highmem = match (arch.is_32bit(), kernel_pt.as_mut()) {
            (true, Some(pt)) => Some(
                Highmem::new(&pa, pt, CpuId(0), layout, config.cpus).map_err(|e| {
                    BootError::Config(ConfigError(format!("kmap setup failed: {e}")))
                })?,
            ),
            _ => None,
        };
        pa.trace.set_machine(
            config.cpus,
            mm::trace::Layout {
                // `vmemmap`, the struct page of PFN 0: on arm64 VMEMMAP_START
                // less the pages below DRAM (memstart_addr >> PAGE_SHIFT
                // struct pages of 64 bytes, arch/arm64/include/asm/memory.h).
                vmemmap: layout
                    .vmemmap_start
                    .map(|v| v.wrapping_sub((arch.dram_base() >> 12) * 64))
                    .unwrap_or(pa.page_offset()),
                page_offset: pa.page_offset(),
                phys_base: arch.dram_base(),
            },
        );
        let mut cpus = crate::process::new_cpus(config.cpus);
        if let Some(pt) = kernel_pt.as_ref().filter(|pt| pt.mode().split_roots()) {
            // arm64: every CPU's TTBR1_EL1 holds swapper_pg_dir.
            cpus.iter_mut().for_each(|c| c.set_ttbr1(pt.root()));
        }
        let slab = SlabAllocator::kmem_cache_init(&pa, config.slab);
        let rmap: std::sync::Arc<mm::rmap::Rmap> = Default::default();
        let cache: std::sync::Arc<mm::filemap::PageCache> = Default::default();
        let swap: std::sync::Arc<mm::swap_state::SwapState> = Default::default();
        let shootdown =
            crate::mmu::DeferredShootdown(cpus.iter().map(|c| c.shootdown.clone()).collect());
        let reclaim = std::sync::Arc::new(mm::vmscan::Reclaimer::new(
            rmap.clone(),
            cache.clone(),
            swap.clone(),
            std::sync::Arc::new(shootdown),
        ));
        pa.set_reclaim(reclaim.clone());
        cache.set_swap(swap.clone());
        mm::mm_init::mem_init_print_info(&pa, &image);
        // kernel_init: the init sections and the image's gaps are freed.
        mm::mm_init::free_initmem(&pa, &image);
        let swap_spec = config.swap.clone();
        let mut m = Machine {
            config,
            e820: map,
            memblock: mb,
            image,
            kernel_pt,
            vmalloc,
            highmem,
            processes: Default::default(),
            cpus,
            tasks: crate::process::TaskState::at_boot(&pa),
            slab,
            rmap,
            cache,
            swap,
            reclaim,
            tmpfs: Default::default(),
            pa,
            ram,
        };
        let ncpus = m.config.cpus;
        m.with_stacks(|_, pa, mut stacks| crate::kobjects::boot_vmap_areas(pa, &mut stacks, ncpus))
            .map_err(|_| BootError::Mm(mm::mm_init::BootError::NoMemory))?;
        if let Some(spec) = swap_spec {
            m.swapon_spec(&spec)
                .map_err(|e| BootError::Config(ConfigError(e)))?;
        }
        Ok(m)
    }

    /// Lets every woken kswapd run (`kswapd` → `balance_pgdat`), as the
    /// scheduler would once the task that woke it leaves the CPU. Returns
    /// the pages reclaimed.
    #[inline]
    pub fn run_kswapd(&mut self) -> u64 {
        self.reclaim.run_kswapd(&self.pa, CpuId(0))
    }

    /// `echo 1 > /proc/sys/vm/drop_caches`: frees the clean, unmapped page
    /// cache. Returns the pages freed.
    pub fn drop_caches(&mut self) -> u64 {
        self.reclaim.drop_pagecache(&self.pa, CpuId(0))
    }

    /// The trace buffer of this machine (`/sys/kernel/tracing`).
    pub fn trace(&self) -> &mm::trace::Trace {
        &self.pa.trace
    }

    /// Samples the counter tracks of a Perfetto trace, if tracing is on and
    /// events happened since the last sample: free blocks per zone and
    /// order, the LRU list sizes per node, swap in use, and each process's
    /// RSS (pages). The machine calls it after each system call and fault;
    /// a driver (a scenario step) may call it too.
    #[inline]
    pub fn trace_sample(&self) {
        if self.pa.trace.sample_due() {
            self.trace_sample_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn trace_sample_now(&self) {
        let t = &self.pa.trace;
        let pages = |v: Vec<(&str, u64)>| -> Vec<(String, u64)> {
            v.into_iter().map(|(k, n)| (k.to_string(), n)).collect()
        };
        for node in &self.pa.nodes {
            for z in node.zones.iter().filter(|z| z.managed() > 0) {
                let area = z.lock_area();
                let values = (0..=mm::mmzone::MAX_PAGE_ORDER as usize)
                    .map(|o| (format!("order{o}"), area.nr_free_order(o)))
                    .collect();
                drop(area);
                t.counter(
                    0,
                    format!("free blocks node{} {}", node.nid, z.ztype.name()),
                    values,
                );
            }
            let sizes = {
                let v = node.lruvec.lock();
                mm::swap::Lru::ALL.map(|l| v.size(l))
            };
            t.counter(
                0,
                format!("LRU pages node{}", node.nid),
                pages(vec![
                    ("inactive_anon", sizes[0]),
                    ("active_anon", sizes[1]),
                    ("inactive_file", sizes[2]),
                    ("active_file", sizes[3]),
                    ("unevictable", sizes[4]),
                ]),
            );
        }
        let table = &self.swap.table;
        let used = table.total_swap_pages().max(0) - table.nr_swap_pages().max(0);
        t.counter(
            0,
            "swap used pages".into(),
            pages(vec![("used", used.max(0) as u64)]),
        );
        for p in self.processes.values() {
            use mm::mm_types::RssKind;
            let r = &p.mm.rss;
            t.counter(
                p.pid,
                "RSS pages".into(),
                pages(vec![
                    ("anon", r.get(RssKind::Anon)),
                    ("file", r.get(RssKind::File)),
                    ("shmem", r.get(RssKind::Shmem)),
                    ("swap", r.get(RssKind::Swap)),
                ]),
            );
        }
    }

    /// Its configuration.
    #[inline]
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }
    /// memblock's final state.
    #[inline]
    pub fn memblock(&self) -> &Memblock {
        &self.memblock
    }
    /// The kernel image's layout.
    #[inline]
    pub fn image(&self) -> &KernelImage {
        &self.image
    }
    /// The kernel's own page tables (always `Some` after boot).
    #[inline]
    pub fn kernel_pt(&self) -> Option<&PageTable> {
        self.kernel_pt.as_ref()
    }
    /// The vmalloc area's bookkeeping (the vmap areas and their pages).
    #[inline]
    pub fn vmap_areas(&self) -> &Vmalloc {
        &self.vmalloc
    }
    /// The processes, by pid.
    #[inline]
    pub fn processes(&self) -> &std::collections::BTreeMap<u32, crate::process::Process> {
        &self.processes
    }
    /// Each CPU's MMU and TLB.
    #[inline]
    pub fn cpus(&self) -> &[crate::mmu::Mmu] {
        &self.cpus
    }
    /// CPU `cpu`'s MMU, to flush or inspect its TLB. Panics if there is no
    /// such CPU, as indexing does.
    #[inline]
    pub fn cpu_mut(&mut self, cpu: usize) -> &mut crate::mmu::Mmu {
        &mut self.cpus[cpu]
    }
    /// Process bookkeeping: next pid, the zero page, exec parameters.
    #[inline]
    pub fn tasks(&self) -> &crate::process::TaskState {
        &self.tasks
    }
    /// The slab allocator.
    #[inline]
    pub fn slab(&self) -> &SlabAllocator {
        &self.slab
    }
    /// The page cache.
    #[inline]
    pub fn cache(&self) -> &mm::filemap::PageCache {
        &self.cache
    }
    /// Swap devices and the swap cache.
    #[inline]
    pub fn swap(&self) -> &mm::swap_state::SwapState {
        &self.swap
    }
    /// Page reclaim's tunables and kswapd's state.
    #[inline]
    pub fn reclaim(&self) -> &mm::vmscan::Reclaimer {
        &self.reclaim
    }
    /// The page allocator.
    #[inline]
    pub fn pa(&self) -> &PageAlloc {
        &self.pa
    }

    /// Bytes of physical address space the host maps for RAM.
    pub fn ram_span(&self) -> u64 {
        self.ram.size()
    }

    /// The memfd that holds the RAM: the frame at physical address P is at
    /// offset P (`lmm native` maps frames of it into the program's host
    /// process).
    pub fn ram_memfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ram.memfd()
    }

    /// Has the host allocate the RAM the page allocator will hand out
    /// next on another CPU, ahead of use ([`Ram::populate_ahead`]).
    pub fn populate_ram_ahead(&self) -> std::io::Result<()> {
        self.ram.populate_ahead()
    }

    /// The kernel log as `dmesg` prints it.
    pub fn dmesg(&self) -> String {
        self.pa.log.render()
    }

    /// /proc/iomem: System RAM and Reserved ranges, the kernel's sections
    /// nested under the RAM that holds them (`%08llx-%08llx : name`, two
    /// spaces per nesting level).
    pub fn iomem(&self) -> String {
        let img = &self.image;
        let (code, rodata, data, bss) =
            (img.text(), img.rodata_range(), img.data(), img.bss_range());
        let mut out = String::new();
        for e in &self.e820 {
            let name = match e.kind {
                E820Type::Usable => "System RAM",
                E820Type::Reserved => "Reserved",
            };
            out.push_str(&format!("{:08x}-{:08x} : {}\n", e.start, e.end - 1, name));
            if e.kind == E820Type::Usable {
                for (r, n) in [
                    (code, "Kernel code"),
                    (rodata, "Kernel rodata"),
                    (data, "Kernel data"),
                    (bss, "Kernel bss"),
                ] {
                    if r.0 >= e.start && r.1 <= e.end {
                        out.push_str(&format!("  {:08x}-{:08x} : {}\n", r.0, r.1 - 1, n));
                    }
                }
            }
        }
        out
    }
}

/// The /proc (and debugfs) files a machine can print, by name.
pub const PROC_FILES: &[&str] = &[
    "buddyinfo",
    "pagetypeinfo",
    "zoneinfo",
    "meminfo",
    "vmstat",
    "swaps",
    "iomem",
    "vmallocinfo",
    "slabinfo",
    "memblock/memory",
    "memblock/reserved",
];

impl Machine {
    /// What meminfo needs beyond the page allocator: the vmalloc area and the
    /// page sizes the kernel's direct map uses (DirectMap4k/2M/1G).
    pub fn meminfo_extras(&self) -> mm::proc::meminfo::MeminfoExtras {
        let mut ex = mm::proc::meminfo::MeminfoExtras::for_arch(self.config.arch);
        mm::proc::vmallocinfo::fill_meminfo(&self.vmalloc, &mut ex);
        if let Some(pt) = &self.kernel_pt {
            let layout = AddressSpaceLayout::new(pt.mode(), 0);
            let start = mm::VirtAddr(layout.page_offset);
            let end = mm::VirtAddr(layout.page_offset + self.ram_span());
            let mut by_level = [0u64; 4];
            pt.walk(start, end, &mut |_va, _pte, level| {
                by_level[level as usize] += pt.mode().span(level) >> 10;
            });
            for (i, slot) in ex.direct_map.iter_mut().enumerate() {
                slot.1 = by_level[i + 1];
            }
        }
        let percpu =
            mm::percpu::build_alloc_info(&percpu_config(self.config.arch), &self.config.cpu_node());
        ex.percpu_kb = (percpu.size_sum() * self.config.cpus as u64) >> 10;
        ex.swap_total_kb = (self.swap.table.total_swap_pages().max(0) as u64 * PAGE_SIZE) >> 10;
        ex.swap_free_kb = (self.swap.table.nr_swap_pages().max(0) as u64 * PAGE_SIZE) >> 10;
        self.overcommit_meminfo(&mut ex);
        ex
    }

    /// Renders a /proc file by name (`buddyinfo`, `meminfo`, ...; the
    /// debugfs files `memblock/memory` and `memblock/reserved` too).
    pub fn proc(&self, name: &str) -> Result<String, String> {
        let pa = &self.pa;
        Ok(match name.trim_start_matches("/proc/") {
            "buddyinfo" => mm::proc::buddyinfo::render(pa),
            "pagetypeinfo" => mm::proc::pagetypeinfo::render(pa),
            "zoneinfo" => mm::proc::zoneinfo::render(pa),
            "meminfo" => mm::proc::meminfo::render(pa, &self.meminfo_extras()),
            "vmallocinfo" => mm::proc::vmallocinfo::render(
                &self.vmalloc,
                pa,
                Some(mm::printk::PtrKey::from_seed(self.config.seed)),
            ),
            "slabinfo" => mm::proc::slabinfo::render(&Kmem::new(&self.slab, pa)),
            "vmstat" => mm::proc::vmstat::render(pa),
            "swaps" => self.swap.table.proc_swaps(),
            "iomem" => self.iomem(),
            "memblock/memory" => self.memblock.dump_memory(),
            "memblock/reserved" => self.memblock.dump_reserved(),
            other => {
                return Err(format!(
                    "no such /proc file {other:?}; lmm knows: {}",
                    PROC_FILES.join(", ")
                ))
            }
        })
    }
}
