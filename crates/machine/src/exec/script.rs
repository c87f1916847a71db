//! `#!` scripts: run the interpreter named on the first line, with at most
//! one argument (the rest of the line), then the script's path, then the
//! original arguments after argv\[0\]. Mirrors fs/binfmt_script.c
//! `load_script`; the parsing only looks at the first `BINPRM_BUF_SIZE`
//! bytes, and a path that may be truncated there is refused (ENOEXEC).

use mm::errno::Errno;

use super::{open_exec_kernel, Bprm, ExecMm, ExecResult};

fn spacetab(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// The parsed `#!` line: interpreter path and optional argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang {
    /// Interpreter path.
    pub name: Vec<u8>,
    /// The single optional argument (everything after the name, trimmed).
    pub arg: Option<Vec<u8>>,
}

/// Parses `buf` (the first bytes of the file, NUL padded) as Linux does.
/// `Err(ENOEXEC)` if it is not a script or the interpreter path may be cut
/// off by the end of the buffer.
pub fn parse_shebang(buf: &[u8]) -> Result<Shebang, Errno> {
    if buf.len() < 2 || buf[0] != b'#' || buf[1] != b'!' {
        return Err(Errno::ENOEXEC);
    }
    let last = buf.len() - 1;
    // End of the line: the newline, else the end of the buffer provided a
    // space, tab or NUL follows the (possibly indented) interpreter path.
    let mut end = match buf.iter().position(|&c| c == b'\n') {
        Some(n) => n,
        None => {
            let Some(first) = (2..=last).find(|&i| !spacetab(buf[i])) else {
                return Err(Errno::ENOEXEC);
            };
            if !(first..=last).any(|i| spacetab(buf[i]) || buf[i] == 0) {
                return Err(Errno::ENOEXEC);
            }
            last
        }
    };
    while end > 2 && spacetab(buf[end - 1]) {
        end -= 1;
    }
    let Some(name_start) = (2..end).find(|&i| !spacetab(buf[i])) else {
        return Err(Errno::ENOEXEC);
    };
    // The name ends at the first space, tab or NUL (or the line end).
    let sep = (name_start..=end.min(last)).find(|&i| spacetab(buf[i]) || buf[i] == 0);
    let name_end = sep.unwrap_or(end).min(end);
    let mut arg = None;
    if let Some(sep) = sep {
        if sep < end && buf[sep] != 0 {
            if let Some(a) = (sep..end).find(|&i| !spacetab(buf[i])) {
                arg = Some(&buf[a..end]);
            }
        }
    }
    // Strings are C strings: they stop at a NUL.
    let cstr = |s: &[u8]| -> Vec<u8> {
        match s.iter().position(|&c| c == 0) {
            Some(n) => s[..n].to_vec(),
            None => s.to_vec(),
        }
    };
    Ok(Shebang {
        name: cstr(&buf[name_start..name_end]),
        arg: arg.map(cstr),
    })
}

/// `load_script`: rewrite the arguments to `interpreter [arg] script
/// args[1..]` and ask exec to start over with the interpreter.
pub fn load_script(_mm: &mut dyn ExecMm, bprm: &mut Bprm) -> Result<Option<ExecResult>, Errno> {
    let sb = parse_shebang(&bprm.buf)?;
    if bprm.argc > 0 {
        bprm.args.remove_arg_zero();
        bprm.argc -= 1;
    }
    bprm.args.copy_string(bprm.interp.as_bytes())?;
    bprm.argc += 1;
    if let Some(arg) = &sb.arg {
        bprm.args.copy_string(arg)?;
        bprm.argc += 1;
    }
    bprm.args.copy_string(&sb.name)?;
    bprm.argc += 1;
    let name = String::from_utf8_lossy(&sb.name).into_owned();
    bprm.interp = name.clone();
    bprm.interpreter = Some(open_exec_kernel(&name)?);
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(s: &[u8]) -> Vec<u8> {
        let mut b = s.to_vec();
        b.resize(256, 0);
        b
    }

    fn sb(name: &str, arg: Option<&str>) -> Shebang {
        Shebang {
            name: name.as_bytes().to_vec(),
            arg: arg.map(|a| a.as_bytes().to_vec()),
        }
    }

    #[test]
    fn parses_like_linux() {
        assert_eq!(
            parse_shebang(&buf(b"#!/bin/sh\necho")),
            Ok(sb("/bin/sh", None))
        );
        assert_eq!(
            parse_shebang(&buf(b"#! /usr/bin/env  python3 -u  \n")),
            Ok(sb("/usr/bin/env", Some("python3 -u")))
        );
        assert_eq!(parse_shebang(&buf(b"#!/bin/sh")), Ok(sb("/bin/sh", None)));
        assert_eq!(
            parse_shebang(&buf(b"#!\t/a\tb c\t\n")),
            Ok(sb("/a", Some("b c")))
        );
        assert_eq!(
            parse_shebang(&buf(b"#!/bin/sh \n")),
            Ok(sb("/bin/sh", None))
        );
        assert_eq!(parse_shebang(&buf(b"#!\n")), Err(Errno::ENOEXEC));
        assert_eq!(parse_shebang(&buf(b"#!   \n")), Err(Errno::ENOEXEC));
        assert_eq!(parse_shebang(&buf(b"# !/bin/sh\n")), Err(Errno::ENOEXEC));
        assert_eq!(parse_shebang(b"#"), Err(Errno::ENOEXEC));
        // A path filling the whole buffer may be truncated: refused.
        let mut long = b"#!/".to_vec();
        long.resize(256, b'x');
        assert_eq!(parse_shebang(&long), Err(Errno::ENOEXEC));
        // All spaces and no newline.
        let mut sp = b"#!".to_vec();
        sp.resize(256, b' ');
        assert_eq!(parse_shebang(&sp), Err(Errno::ENOEXEC));
        // No newline in the buffer, but the path ends: the argument is cut.
        let mut cut = b"#!/bin/sh -".to_vec();
        cut.resize(256, b'y');
        let got = parse_shebang(&cut).unwrap();
        assert_eq!(got.name, b"/bin/sh".to_vec());
        assert_eq!(got.arg.unwrap().len(), 256 - 10 - 1);
    }
}
