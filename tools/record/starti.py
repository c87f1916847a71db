# gdb script: at the first instruction of the inferior, save the raw
# /proc/PID/maps, /proc/PID/auxv, the initial stack ($rsp to the end of
# [stack]), $rsp, and the argv/envp the kernel was given.
# The caller sets the Python variable OUT (a path prefix) before sourcing this
# file, e.g.  gdb -batch -ex 'python OUT="tests/fixtures/starti/ls"' -x starti.py
import gdb

gdb.execute("starti", to_string=True)
inf = gdb.selected_inferior()
pid = inf.pid


def slurp(name):
    with open("/proc/%d/%s" % (pid, name), "rb") as f:
        return f.read()


maps = slurp("maps")
with open(OUT + ".maps", "wb") as f:
    f.write(maps)
with open(OUT + ".auxv", "wb") as f:
    f.write(slurp("auxv"))

rsp = int(gdb.parse_and_eval("(unsigned long)$rsp"))
stack_end = None
for line in maps.decode().splitlines():
    if line.endswith("[stack]"):
        lo, hi = line.split()[0].split("-")
        stack_end = int(hi, 16)
assert stack_end is not None and rsp < stack_end
data = bytes(inf.read_memory(rsp, stack_end - rsp))
with open(OUT + ".stack", "wb") as f:
    f.write(data)
with open(OUT + ".rsp", "w") as f:
    f.write("rsp 0x%x\nstack_end 0x%x\nbytes %d\n" % (rsp, stack_end, len(data)))

# argv and envp exactly as exec'ed (NUL-separated in /proc).
argv = slurp("cmdline").split(b"\0")[:-1]
envp = slurp("environ").split(b"\0")[:-1]
with open(OUT + ".env", "wb") as f:
    for a in argv:
        f.write(b"argv " + a + b"\n")
    for e in envp:
        f.write(b"envp " + e + b"\n")
gdb.execute("kill", to_string=True)
