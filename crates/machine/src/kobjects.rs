//! The kernel objects a process costs, held in their own slab caches as in
//! Linux: task_struct, the kernel stack (THREAD_SIZE pages from the buddy
//! allocator), signal/sighand/files/fs/cred/pid, mm_struct, one
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
use mm::slab_common::{CacheId, Kmem, ObjPtr, SlabAllocator};
use mm::types::{Order, Pfn};
use mm::vmstat::NodeStat;

/// Caches each process takes one object from, in `copy_process` order.
pub const TASK_CACHES: [&str; 7] = [
    "task_struct",
    "pid",
    "cred_jar",
    "files_cache",
    "fs_cache",
    "sighand_cache",
    "signal_cache",
];

/// A process's kernel objects.
#[derive(Debug, Default)]
pub struct TaskObjects {
    task: Vec<(CacheId, ObjPtr)>,
    stack: Option<(Pfn, Order)>,
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
    /// stack. On failure everything taken is given back (ENOMEM).
    pub fn alloc(sa: &SlabAllocator, pa: &PageAlloc, cpu: CpuId) -> Result<TaskObjects, Errno> {
        let k = Kmem::new(sa, pa);
        let mut t = TaskObjects::default();
        for name in TASK_CACHES {
            let id = cache(sa, name)?;
            match k.kmem_cache_alloc(cpu, id, Gfp::KERNEL_ACCOUNT) {
                Some(o) => t.task.push((id, o)),
                None => {
                    t.free(sa, pa, cpu);
                    return Err(Errno::ENOMEM);
                }
            }
        }
        let order = Order::for_size(pa.arch.thread_size());
        match pa.alloc_pages(cpu, Gfp::KERNEL_ACCOUNT, order) {
            Some(pfn) => {
                let nid = pa.page(pfn).map_or(0, |p| p.nid()) as usize;
                pa.nodes[nid].stats.add(
                    NodeStat::NrKernelStack,
                    (pa.arch.thread_size() >> 10) as i64,
                );
                t.stack = Some((pfn, order));
            }
            None => {
                t.free(sa, pa, cpu);
                return Err(Errno::ENOMEM);
            }
        }
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
    pub fn sync_vmas(&mut self, sa: &SlabAllocator, pa: &PageAlloc, cpu: CpuId, mm: &MmStruct) {
        let want = mm.kernel_objects();
        let k = Kmem::new(sa, pa);
        let ids = *self
            .vma_caches
            .get_or_insert_with(|| VMA_CACHES.map(|n| sa.find_cache(n)));
        for (id, objs, want) in [
            (ids[0], &mut self.vmas, want.vmas),
            (ids[1], &mut self.anon_vmas, want.anon_vmas),
            (ids[2], &mut self.chains, want.chains),
            (ids[3], &mut self.files, want.files),
        ] {
            if objs.len() == want {
                continue;
            }
            let Some(id) = id else { continue };
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
    }

    /// Frees everything (`free_task`, `mmput`).
    pub fn free(&mut self, sa: &SlabAllocator, pa: &PageAlloc, cpu: CpuId) {
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
        if let Some((pfn, order)) = self.stack.take() {
            let nid = pa.page(pfn).map_or(0, |p| p.nid()) as usize;
            pa.nodes[nid].stats.add(
                NodeStat::NrKernelStack,
                -((pa.arch.thread_size() >> 10) as i64),
            );
            pa.free_pages(cpu, pfn, order);
        }
    }
}
