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

/// The caller vmallocinfo names for a task's stack: this host's
/// `/proc/vmallocinfo` shows every VMAP_STACK stack as
/// `20480 kernel_clone+0x94/0x3e0 pages=4 vmalloc N0=4` (the return address
/// in `alloc_thread_stack_node`'s caller, inlined into kernel_clone).
pub const STACK_CALLER: &str = "kernel_clone+0x94/0x3e0";

/// The caller vmallocinfo names for an idle task's stack: `fork_idle` makes
/// one per secondary CPU at `smp_init`; this host shows
/// `20480 fork_idle+0x74/0x120 pages=4 vmalloc N0=4`.
pub const IDLE_STACK_CALLER: &str = "fork_idle+0x74/0x120";

/// The caller vmallocinfo names for a CPU's IRQ stack on x86-64: this host
/// shows `20480 irq_init_percpu_irqstack+0xca/0x100 vmap`, one per CPU.
pub const IRQ_STACK_CALLER: &str = "irq_init_percpu_irqstack+0xca/0x100";

/// x86-64's IRQ_STACK_SIZE: 16 KiB (arch/x86/include/asm/page_64_types.h).
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

/// A task's kernel stack.
#[derive(Clone, Copy, Debug)]
enum Stack {
    /// THREAD_SIZE pages of the buddy allocator (`alloc_pages_node`).
    Pages(Pfn, Order),
    /// A vmalloc area of THREAD_SIZE (VMAP_STACK).
    Vmap(VirtAddr),
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
    stack: Option<Stack>,
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
    /// stack (from `vmap` where the arch has VMAP_STACK). On failure
    /// everything taken is given back (ENOMEM).
    pub fn alloc(
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        vmap: Option<VmapStacks>,
    ) -> Result<TaskObjects, Errno> {
        TaskObjects::alloc_from(&TASK_CACHES, sa, pa, cpu, vmap)
    }

    /// [`TaskObjects::alloc`] for a new thread of a thread group: only its
    /// own `task_struct`, `pid` and kernel stack ([`THREAD_CACHES`]).
    pub fn alloc_thread(
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        vmap: Option<VmapStacks>,
    ) -> Result<TaskObjects, Errno> {
        TaskObjects::alloc_from(&TASK_CACHES[..THREAD_CACHES], sa, pa, cpu, vmap)
    }

    /// One object of each of `caches` and a kernel stack.
    fn alloc_from(
        caches: &[&str],
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        mut vmap: Option<VmapStacks>,
    ) -> Result<TaskObjects, Errno> {
        let k = Kmem::new(sa, pa);
        let mut t = TaskObjects::default();
        for &name in caches {
            let id = cache(sa, name)?;
            match k.kmem_cache_alloc(cpu, id, Gfp::KERNEL_ACCOUNT) {
                Some(o) => t.task.push((id, o)),
                None => {
                    t.free(sa, pa, cpu, vmap);
                    return Err(Errno::ENOMEM);
                }
            }
        }
        let stack = match vmap.as_mut() {
            Some(v) => alloc_vmap_stack(pa, cpu, v).map(Stack::Vmap),
            None => {
                let order = Order::for_size(pa.arch.thread_size());
                pa.alloc_pages(cpu, Gfp::KERNEL_ACCOUNT, order)
                    .map(|pfn| Stack::Pages(pfn, order))
            }
        };
        let Some(stack) = stack else {
            t.free(sa, pa, cpu, vmap);
            return Err(Errno::ENOMEM);
        };
        account_kernel_stack(pa, vmap.as_ref(), stack, 1);
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

    /// Frees everything (`free_task`, `mmput`); a vmap stack goes to the
    /// CPU's cache if it has room, else back to vmalloc.
    pub fn free(
        &mut self,
        sa: &SlabAllocator,
        pa: &PageAlloc,
        cpu: CpuId,
        vmap: Option<VmapStacks>,
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
        let Some(stack) = self.stack.take() else {
            return;
        };
        account_kernel_stack(pa, vmap.as_ref(), stack, -1);
        match (stack, vmap) {
            (Stack::Pages(pfn, order), _) => pa.free_pages(cpu, pfn, order),
            (Stack::Vmap(addr), Some(v)) => {
                // try_release_thread_stack_to_cache, else vfree (Linux
                // defers that vfree past an RCU grace period; lmm has none).
                match v.cached[cpu.0].iter_mut().find(|c| c.is_none()) {
                    Some(slot) => *slot = Some(addr),
                    None => v.vmalloc.vfree(pa, v.pt, cpu, addr, v.flush),
                }
            }
            // Callers pass the vmalloc area on every VMAP_STACK machine.
            (Stack::Vmap(_), None) => debug_assert!(false, "a vmap stack freed without vmalloc"),
        }
    }
}

/// `alloc_thread_stack_node` with VMAP_STACK: a stack this CPU cached,
/// cleared of its stale contents, or a new one.
fn alloc_vmap_stack(pa: &PageAlloc, cpu: CpuId, v: &mut VmapStacks) -> Option<VirtAddr> {
    if let Some(addr) = v.cached[cpu.0].iter_mut().find_map(Option::take) {
        if let Some(area) = v.vmalloc.find_vm_area(addr) {
            for &pfn in &area.pages {
                pa.direct_map().zero_pages(pfn, 1);
            }
        }
        return Some(addr);
    }
    vmalloc_stack(pa, cpu, v, STACK_CALLER)
}

/// A new THREAD_SIZE stack area of zeroed pages (THREADINFO_GFP) aligned
/// to THREAD_ALIGN: THREAD_SIZE on x86-64; arm64's memory.h doubles it so
/// an overflow is found from the stack pointer.
fn vmalloc_stack(pa: &PageAlloc, cpu: CpuId, v: &mut VmapStacks, caller: &str) -> Option<VirtAddr> {
    let size = pa.arch.thread_size();
    let align = if pa.arch == mm::arch::Arch::Arm64 {
        2 * size
    } else {
        size
    };
    v.vmalloc
        .vmalloc_thread_stack(pa, v.pt, cpu, size, align, caller)
}

/// The vmalloc areas a fresh kernel has before it runs init, beyond the
/// stacks of the tasks lmm models:
/// - on x86-64, each CPU's IRQ stack: `irq_init_percpu_irqstack` vmaps the
///   IRQ_STACK_SIZE pages of the CPU's percpu `irq_stack_backing_store`
///   (flag VM_MAP, no pages= since the area does not own them). lmm maps the
///   first pages of the CPU's percpu unit: where in the unit the linker put
///   the backing store is not modelled.
/// - on every VMAP_STACK arch, the idle task's stack of each secondary CPU
///   (`fork_idle` at smp_init), counted in KernelStack for good: idle tasks
///   never exit.
///
/// Linux makes CPU 0's IRQ stack in init_IRQ, the idle stacks in smp_init,
/// then each secondary CPU's IRQ stack as it comes up; lmm keeps that order.
/// arm64's IRQ stacks (vmalloc'd by `init_irq_stacks`) are not made: its
/// caller's offset could not be checked against a real kernel.
pub fn boot_vmap_areas(pa: &PageAlloc, v: &mut VmapStacks, ncpus: usize) -> Result<(), Errno> {
    let irq_stack = |v: &mut VmapStacks, cpu: usize| -> Result<(), Errno> {
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
                IRQ_STACK_CALLER,
            )
            .map(|_| ())
            .ok_or(Errno::ENOMEM)
    };
    irq_stack(v, 0)?;
    for _ in 1..ncpus {
        let addr = vmalloc_stack(pa, CpuId(0), v, IDLE_STACK_CALLER).ok_or(Errno::ENOMEM)?;
        account_kernel_stack(pa, Some(v), Stack::Vmap(addr), 1);
    }
    (1..ncpus).try_for_each(|cpu| irq_stack(v, cpu))
}

/// `account_kernel_stack`: NR_KERNEL_STACK_KB on the node of each of the
/// stack's pages, `sign` = 1 when the task gets it, -1 when it lets go
/// (a stack kept in a CPU's cache counts for no task).
fn account_kernel_stack(pa: &PageAlloc, vmap: Option<&VmapStacks>, stack: Stack, sign: i64) {
    let add = |pfn: Pfn, kb: u64| {
        let nid = pa.page(pfn).map_or(0, |p| p.nid()) as usize;
        pa.nodes[nid]
            .stats
            .add(NodeStat::NrKernelStack, sign * kb as i64);
    };
    match stack {
        Stack::Pages(pfn, _) => add(pfn, pa.arch.thread_size() >> 10),
        Stack::Vmap(addr) => {
            if let Some(area) = vmap.and_then(|v| v.vmalloc.find_vm_area(addr)) {
                for &pfn in &area.pages {
                    add(pfn, mm::types::PAGE_SIZE >> 10);
                }
            }
        }
    }
}
