//! The kernel objects a process costs, held in their own slab caches as in
//! Linux: task_struct, the kernel stack (THREAD_SIZE of vmalloc space where
//! the arch has CONFIG_VMAP_STACK, as x86-64 and arm64 do; THREAD_SIZE
//! pages from the buddy allocator on 32-bit x86), signal/sighand/files/fs/cred/pid, mm_struct, one
//! vm_area_struct per VMA and anon_vma/anon_vma_chain for anonymous
//! memory. The Rust data of a process lives in host memory; these
//! allocations make slabinfo, Slab, KernelStack and MemFree tell what Linux
//! would (kernel/fork.c `dup_task_struct`, `copy_process`, `mm_alloc`).
//!
//! Simplification: VMA and anon_vma objects are reconciled after each
//! system call to the number of VMAs (and of distinct anon_vmas, and of
//! VMAs with one) rather than allocated inside the VMA code.

use mm::errno::Errno;
use mm::gfp::Gfp;
use mm::mm_types::MmStruct;
use mm::page_alloc::{CpuId, PageAlloc};
use mm::pgtable::PageTable;
use mm::slab_common::{CacheId, Kmem, ObjPtr, SlabAllocator};
use mm::types::{Order, Pfn, VirtAddr};
use mm::vmalloc::Vmalloc;
use mm::vmstat::NodeStat;

/// The callers /proc/vmallocinfo names (`%pS` of the return address
/// vmalloc records) for the areas the kernel makes at boot and at fork.
#[derive(Clone, Copy, Debug)]
pub struct Callers {
    /// A task's VMAP_STACK stack: `alloc_thread_stack_node` is inlined into
    /// `copy_process`, so the return address is in its caller,
    /// `kernel_clone`.
    pub task_stack: &'static str,
    /// An idle task's stack: `fork_idle` (one per secondary CPU at
    /// `smp_init`) calls `copy_process`.
    pub idle_stack: &'static str,
    /// A CPU's IRQ stack.
    pub irq_stack: &'static str,
}

/// x86-64: this host's recorded /proc/vmallocinfo (tests/host/vmallocinfo.txt,
/// Linux 6.18.44 build v657): `20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc
/// N0=4`, `20480 fork_idle+0x74/0x120 ...` and, one per CPU, `20480
/// irq_init_percpu_irqstack+0xca/0x100 vmap`.
pub const X86_64_CALLERS: Callers = Callers {
    task_stack: "kernel_clone+0x94/0x3e0",
    idle_stack: "fork_idle+0x74/0x120",
    irq_stack: "irq_init_percpu_irqstack+0xca/0x100",
};

/// arm64: the call sites in Debian's arm64 kernel 6.12.100+deb12 (the newest
/// arm64 build this machine's package sources carry; no 6.18 arm64 build
/// was at hand), found by disassembling its Image with the symbols of its
/// kallsyms. The names are what 6.18's source gives, the offsets are
/// 6.12's. `init_IRQ` calls `__vmalloc_node` itself (`init_irq_stacks` and
/// `arch_alloc_vmap_stack` are inlined) with `__builtin_return_address(0)`,
/// so the IRQ stacks name `init_IRQ`'s caller: `start_kernel+0x348/0x7e8`
/// (real arm64 vmallocinfo dumps show `20480 start_kernel+... pages=4
/// vmalloc` lines, one per CPU).
///
/// The ioremaps' caller is [`crate::qemu_virt::IOREMAP_CALLER`].
pub const ARM64_CALLERS: Callers = Callers {
    task_stack: "kernel_clone+0xa0/0x470",
    idle_stack: "fork_idle+0x98/0x128",
    irq_stack: "start_kernel+0x348/0x7e8",
};

/// The callers of `arch`'s kernel (x86-64's for the others).
pub fn callers(arch: mm::arch::Arch) -> &'static Callers {
    match arch {
        mm::arch::Arch::Arm64 => &ARM64_CALLERS,
        _ => &X86_64_CALLERS,
    }
}

/// x86-64's IRQ_STACK_SIZE: 16 KiB (arch/x86/include/asm/page_64_types.h).
/// arm64's IRQ_STACK_SIZE is THREAD_SIZE, 16 KiB too (asm/memory.h).
const IRQ_STACK_SIZE: u64 = 16 << 10;

/// `NR_CACHED_STACKS`: freed vmap stacks each CPU keeps for the next task.
pub const NR_CACHED_STACKS: usize = 2;

/// Where kernel stacks come from with CONFIG_VMAP_STACK: the vmalloc area
/// and the kernel page tables, each CPU's cache of freed stacks, and a TLB
/// flush of every CPU for a vfree.
pub struct VmapStacks<'a> {
    /// The vmalloc allocator.
    pub vmalloc: &'a mut Vmalloc,
    /// The kernel page tables.
    pub pt: &'a mut PageTable,
    /// Per CPU, the stacks freed tasks left (`cached_stacks`).
    pub cached: &'a mut [[Option<VirtAddr>; NR_CACHED_STACKS]],
    /// Flushes a kernel range from every CPU's TLB.
    pub flush: &'a mut dyn FnMut(VirtAddr, VirtAddr),
}

/// Where a machine's kernel stacks come from, fixed by its arch.
pub enum KernelStacks<'a> {
    /// THREAD_SIZE pages of the buddy allocator (`alloc_pages_node`):
    /// 32-bit x86, which has no VMAP_STACK.
    Pages,
    /// A vmalloc area of THREAD_SIZE (VMAP_STACK: x86-64, arm64).
    Vmap(VmapStacks<'a>),
}

/// A task's kernel stack, as its machine's [`KernelStacks`] made it: the
/// first frame of a THREAD_SIZE block ([`KernelStacks::Pages`]) or the start
/// of a vmalloc area ([`KernelStacks::Vmap`]). Only that source reads it, so
/// a stack cannot be given back the other way.
#[derive(Clone, Copy, Debug)]
struct KernelStack(u64);

impl KernelStacks<'_> {
    /// `alloc_thread_stack_node`: a stack for a new task on `cpu`; with
    /// VMAP_STACK one this CPU cached, cleared of its stale contents, or a
    /// new one.
    fn alloc(&mut self, pa: &PageAlloc, cpu: CpuId) -> Option<KernelStack> {
        match self {
            KernelStacks::Pages => {
                let order = Order::for_size(pa.arch.thread_size());
                let pfn = pa.alloc_pages(cpu, Gfp::KERNEL_ACCOUNT, order)?;
                Some(KernelStack(pfn.0))
            }
            KernelStacks::Vmap(v) => {
                if let Some(addr) = v.cached[cpu.0].iter_mut().find_map(Option::take) {
                    if let Some(area) = v.vmalloc.find_vm_area(addr) {
                        for &pfn in &area.pages {
                            pa.direct_map().zero_pages(pfn, 1);
                        }
                    }
                    return Some(KernelStack(addr.0));
                }
                let (size, caller) = (pa.arch.thread_size(), callers(pa.arch).task_stack);
                vmalloc_stack(pa, cpu, v, size, caller).map(|a| KernelStack(a.0))
            }
        }
    }

    /// `free_thread_stack`: a vmap stack goes to the CPU's cache if it has
    /// room, else back to vmalloc (Linux defers that vfree past an RCU
    /// grace period; lmm has none).
    fn free(&mut self, pa: &PageAlloc, cpu: CpuId, stack: KernelStack) {
        match self {
            KernelStacks::Pages => {
                let order = Order::for_size(pa.arch.thread_size());
                pa.free_pages(cpu, Pfn(stack.0), order);
            }
            KernelStacks::Vmap(v) => {
                let addr = VirtAddr(stack.0);
                match v.cached[cpu.0].iter_mut().find(|c| c.is_none()) {
                    Some(slot) => *slot = Some(addr),
                    None => v.vmalloc.vfree(pa, v.pt, cpu, addr, v.flush),
                }
            }
        }
    }

    /// `account_kernel_stack`: NR_KERNEL_STACK_KB on the node of each of
    /// the stack's pages, `sign` = 1 when the task gets it, -1 when it lets
    /// go.
    fn account(&self, pa: &PageAlloc, stack: KernelStack, sign: i64) {
        match self {
            KernelStacks::Pages => account_kb(pa, Pfn(stack.0), pa.arch.thread_size() >> 10, sign),
            KernelStacks::Vmap(v) => account_vmap_stack(pa, v, VirtAddr(stack.0), sign),
        }
    }
}

/// Caches each process takes one object from, in `copy_process` order
/// (a thread, CLONE_THREAD with the rest shared, takes only the first
/// [`THREAD_CACHES`]: its `task_struct` and `pid`).
pub const TASK_CACHES: [&str; 7] = [
    "task_struct",
    "pid",
    "cred_jar",
    "files_cache",
    "fs_cache",
    "sighand_cache",
    "signal_cache",
];

/// How many of [`TASK_CACHES`] a new thread of an existing thread group
/// allocates from: its creds, files, fs, signal handlers and signal struct
/// are the group's (CLONE_THREAD implies CLONE_SIGHAND and CLONE_VM;
/// pthread_create adds CLONE_FILES and CLONE_FS).
pub const THREAD_CACHES: usize = 2;

/// A process's kernel objects.
#[derive(Debug, Default)]
pub struct TaskObjects {
    task: Vec<(CacheId, ObjPtr)>,
    stack: Option<KernelStack>,
    mm_struct: Option<(CacheId, ObjPtr)>,
    vmas: Vec<ObjPtr>,
    anon_vmas: Vec<ObjPtr>,
    chains: Vec<ObjPtr>,
    files: Vec<ObjPtr>,
    /// The caches of [`VMA_CACHES`], looked up once.
    vma_caches: Option<[Option<CacheId>; 4]>,
}

/// The caches the VMA tree's objects come from.
const VMA_CACHES: [&str; 4] = ["vm_area_struct", "anon_vma", "anon_vma_chain", "filp"];

fn cache(sa: &SlabAllocator, name: &str) -> Result<CacheId, Errno> {
    sa.find_cache(name).ok_or(Errno::ENOMEM)
}

/// Objects a process needs beyond its address space.
impl TaskObjects {
    /// `dup_task_struct` + `copy_process`: the task's objects and its kernel
    /// stack (from `stacks`). On failure everything taken is given back
    /// (ENOMEM).
    pub fn alloc(
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        stacks: KernelStacks,
    ) -> Result<TaskObjects, Errno> {
        TaskObjects::alloc_from(&TASK_CACHES, sa, pa, cpu, stacks)
    }

    /// [`TaskObjects::alloc`] for a new thread of a thread group: only its
    /// own `task_struct`, `pid` and kernel stack ([`THREAD_CACHES`]).
    pub fn alloc_thread(
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        stacks: KernelStacks,
    ) -> Result<TaskObjects, Errno> {
        TaskObjects::alloc_from(&TASK_CACHES[..THREAD_CACHES], sa, pa, cpu, stacks)
    }

    /// One object of each of `caches` and a kernel stack.
    fn alloc_from(
        caches: &[&str],
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        mut stacks: KernelStacks,
    ) -> Result<TaskObjects, Errno> {
        let k = Kmem::new(sa, pa);
        let mut t = TaskObjects::default();
        for &name in caches {
            let id = cache(sa, name)?;
            match k.kmem_cache_alloc(cpu, id, Gfp::KERNEL_ACCOUNT) {
                Some(o) => t.task.push((id, o)),
                None => {
                    t.free(sa, pa, cpu, stacks);
                    return Err(Errno::ENOMEM);
                }
            }
        }
        let Some(stack) = stacks.alloc(pa, cpu) else {
            t.free(sa, pa, cpu, stacks);
            return Err(Errno::ENOMEM);
        };
        stacks.account(pa, stack, 1);
        t.stack = Some(stack);
        Ok(t)
    }

    /// `mm_alloc`: a fresh mm_struct for a new address space (exec); the
    /// previous one is freed (`mmput`).
    pub fn new_mm(&mut self, sa: &SlabAllocator, pa: &PageAlloc, cpu: CpuId) -> Result<(), Errno> {
        let k = Kmem::new(sa, pa);
        let id = cache(sa, "mm_struct")?;
        let o = k
            .kmem_cache_alloc(cpu, id, Gfp::KERNEL_ACCOUNT)
            .ok_or(Errno::ENOMEM)?;
        if let Some((old_id, old)) = self.mm_struct.replace((id, o)) {
            let _ = k.kmem_cache_free(cpu, old_id, old);
        }
        Ok(())
    }

    /// Brings the vm_area_struct, anon_vma, anon_vma_chain and filp objects
    /// in line with `mm`: one per VMA, per distinct anon_vma, per VMA that
    /// links to one (own or inherited through fork), and one `struct file`
    /// per distinct mapped file (the open
    /// file VMAs share through `get_file`; our mmap opens each file once).
    /// Allocation failures leave the count short (Linux would have failed
    /// the call earlier); frees always happen.
    #[inline]
    pub fn sync_vmas(&mut self, sa: &SlabAllocator, pa: &PageAlloc, cpu: CpuId, mm: &MmStruct) {
        let want = mm.kernel_objects();
        for (i, want) in [want.vmas, want.anon_vmas, want.chains, want.files]
            .into_iter()
            .enumerate()
        {
            if self.vma_objects(i).len() != want {
                self.resync(sa, pa, cpu, i, want);
            }
        }
    }

    /// The objects of cache `i` of [`VMA_CACHES`].
    #[inline]
    fn vma_objects(&mut self, i: usize) -> &mut Vec<ObjPtr> {
        match i {
            0 => &mut self.vmas,
            1 => &mut self.anon_vmas,
            2 => &mut self.chains,
            _ => &mut self.files,
        }
    }

    /// Frees or allocates objects of cache `i` of [`VMA_CACHES`] until
    /// there are `want` (or an allocation fails).
    #[inline(never)]
    fn resync(&mut self, sa: &SlabAllocator, pa: &PageAlloc, cpu: CpuId, i: usize, want: usize) {
        let ids = self
            .vma_caches
            .get_or_insert_with(|| VMA_CACHES.map(|n| sa.find_cache(n)));
        let Some(id) = ids[i] else { return };
        let k = Kmem::new(sa, pa);
        let objs = self.vma_objects(i);
        while objs.len() > want {
            let o = objs.pop().expect("non-empty");
            let _ = k.kmem_cache_free(cpu, id, o);
        }
        while objs.len() < want {
            match k.kmem_cache_alloc(cpu, id, Gfp::KERNEL_ACCOUNT) {
                Some(o) => objs.push(o),
                None => break,
            }
        }
    }

    /// Frees everything (`free_task`, `mmput`); the kernel stack goes back
    /// to `stacks`, the source of the machine that made it.
    pub fn free(
        &mut self,
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        mut stacks: KernelStacks,
    ) {
        let k = Kmem::new(sa, pa);
        for (name, objs) in [
            ("vm_area_struct", &mut self.vmas),
            ("anon_vma", &mut self.anon_vmas),
            ("anon_vma_chain", &mut self.chains),
            ("filp", &mut self.files),
        ] {
            if let Ok(id) = cache(sa, name) {
                for o in objs.drain(..) {
                    let _ = k.kmem_cache_free(cpu, id, o);
                }
            }
        }
        if let Some((id, o)) = self.mm_struct.take() {
            let _ = k.kmem_cache_free(cpu, id, o);
        }
        for (id, o) in self.task.drain(..) {
            let _ = k.kmem_cache_free(cpu, id, o);
        }
        if let Some(stack) = self.stack.take() {
            stacks.account(pa, stack, -1);
            stacks.free(pa, cpu, stack);
        }
    }
}

/// A new stack area of `size` zeroed pages (THREADINFO_GFP) aligned to
/// THREAD_ALIGN: THREAD_SIZE on x86-64; arm64's memory.h doubles it so an
/// overflow is found from the stack pointer.
fn vmalloc_stack(
    pa: &PageAlloc,
    cpu: CpuId,
    v: &mut VmapStacks,
    size: u64,
    caller: &str,
) -> Option<VirtAddr> {
    let align = if pa.arch == mm::arch::Arch::Arm64 {
        2 * pa.arch.thread_size()
    } else {
        pa.arch.thread_size()
    };
    v.vmalloc
        .vmalloc_thread_stack(pa, v.pt, cpu, size, align, caller)
}

/// The vmalloc areas a fresh kernel has before it runs init, beyond the
/// stacks of the tasks lmm models, in the order Linux makes them:
/// - each CPU's IRQ stack. x86-64: `irq_init_percpu_irqstack` vmaps the
///   IRQ_STACK_SIZE pages of the CPU's percpu `irq_stack_backing_store`
///   (flag VM_MAP, no pages= since the area does not own them), CPU 0's in
///   init_IRQ, each secondary CPU's as it comes up; lmm maps the first pages
///   of the CPU's percpu unit (where in the unit the linker put the backing
///   store is not modelled). arm64: `init_IRQ` vmallocs one IRQ_STACK_SIZE
///   stack, THREAD_ALIGN aligned, for every possible CPU up front
///   (`init_irq_stacks` with VMAP_STACK), not counted in KernelStack.
/// - on arm64, the interrupt controller's ioremaps (`irqchip_init`, right
///   after the IRQ stacks), see [`crate::qemu_virt`].
/// - on every VMAP_STACK arch, the idle task's stack of each secondary CPU
///   (`fork_idle` at smp_init), counted in KernelStack for good: idle tasks
///   never exit.
/// - on arm64, the ioremaps the drivers' probes keep (initcalls).
///
/// x86-64's devices (ACPI tables, PCI ECAM, virtio-pci BARs) are not made.
pub fn boot_vmap_areas(
    pa: &PageAlloc,
    stacks: &mut KernelStacks,
    ncpus: usize,
) -> Result<(), Errno> {
    let KernelStacks::Vmap(v) = stacks else {
        return Ok(());
    };
    let c = callers(pa.arch);
    let arm64 = pa.arch == mm::arch::Arch::Arm64;
    let ioremap = |v: &mut VmapStacks, &(phys, size): &crate::qemu_virt::Window| {
        v.vmalloc
            .ioremap(
                pa,
                v.pt,
                CpuId(0),
                mm::types::PhysAddr(phys),
                size,
                crate::qemu_virt::IOREMAP_CALLER,
            )
            .map(|_| ())
            .ok_or(Errno::ENOMEM)
    };
    let x86_irq_stack = |v: &mut VmapStacks, cpu: usize| -> Result<(), Errno> {
        if pa.arch != mm::arch::Arch::X86_64 {
            return Ok(());
        }
        let unit = pa.percpu_units.get(cpu).ok_or(Errno::ENOMEM)?;
        let pages: Vec<Pfn> = (0..IRQ_STACK_SIZE / mm::types::PAGE_SIZE)
            .map(|i| Pfn(unit.0 / mm::types::PAGE_SIZE + i))
            .collect();
        v.vmalloc
            .vmap(
                pa,
                v.pt,
                CpuId(0),
                &pages,
                mm::vmalloc::VmallocFlags::MAP,
                mm::arch::pte::PteFlags::KERNEL,
                c.irq_stack,
            )
            .map(|_| ())
            .ok_or(Errno::ENOMEM)
    };
    if arm64 {
        for _ in 0..ncpus {
            vmalloc_stack(pa, CpuId(0), v, IRQ_STACK_SIZE, c.irq_stack).ok_or(Errno::ENOMEM)?;
        }
        for w in &crate::qemu_virt::IRQCHIP_IOREMAPS {
            ioremap(v, w)?;
        }
    } else {
        x86_irq_stack(v, 0)?;
    }
    for _ in 1..ncpus {
        let size = pa.arch.thread_size();
        let addr = vmalloc_stack(pa, CpuId(0), v, size, c.idle_stack).ok_or(Errno::ENOMEM)?;
        account_vmap_stack(pa, v, addr, 1);
    }
    if arm64 {
        crate::qemu_virt::DRIVER_IOREMAPS
            .iter()
            .try_for_each(|w| ioremap(v, w))
    } else {
        (1..ncpus).try_for_each(|cpu| x86_irq_stack(v, cpu))
    }
}

/// `account_kernel_stack` of a vmap stack: NR_KERNEL_STACK_KB on the node
/// of each of its pages, `sign` = 1 when a task gets it, -1 when it lets go
/// (a stack kept in a CPU's cache counts for no task).
fn account_vmap_stack(pa: &PageAlloc, v: &VmapStacks, addr: VirtAddr, sign: i64) {
    if let Some(area) = v.vmalloc.find_vm_area(addr) {
        for &pfn in &area.pages {
            account_kb(pa, pfn, mm::types::PAGE_SIZE >> 10, sign);
        }
    }
}

/// Adds `sign * kb` to NR_KERNEL_STACK_KB of the node of `pfn`.
fn account_kb(pa: &PageAlloc, pfn: Pfn, kb: u64, sign: i64) {
    let nid = pa.page(pfn).map_or(0, |p| p.nid()) as usize;
    pa.nodes[nid]
        .stats
        .add(NodeStat::NrKernelStack, sign * kb as i64);
}
