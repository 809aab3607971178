//! Is this file a complete shared object? Shared by the watcher (do not report a file
//! still being written) and the loader (do not `dlopen` one, even when asked by hand).
//!
//! `head` is the start of the file (at least the first 64 bytes when the file has them);
//! `len` its full length.

/// Checks the magic (and on ELF, that the declared header tables fit in the file).
#[cfg(not(target_os = "macos"))]
pub fn check_object(head: &[u8], len: u64) -> Result<(), String> {
    if !head.starts_with(b"\x7fELF") {
        return Err(format!(
            "not an ELF file (starts with {})",
            hex_prefix(head)
        ));
    }
    elf_tables_fit(head, len)
}

/// Checks the Mach-O (or universal binary) magic.
#[cfg(target_os = "macos")]
pub fn check_object(head: &[u8], _len: u64) -> Result<(), String> {
    const MAGICS: [[u8; 4]; 5] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
    ];
    if MAGICS.iter().any(|m| head.starts_with(m)) {
        Ok(())
    } else {
        Err(format!(
            "not a Mach-O file (starts with {})",
            hex_prefix(head)
        ))
    }
}

fn hex_prefix(head: &[u8]) -> String {
    head.iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// If the bytes after the magic form an ELF header (class 32/64, either byte order), the
/// program and section header tables it declares must end inside the file. Linkers write
/// these tables last, so a file paused mid-write fails here even when it looked settled.
/// Bytes that do not form a header (a hand-made test file) are left to the loader.
#[cfg_attr(target_os = "macos", allow(dead_code))]
fn elf_tables_fit(head: &[u8], len: u64) -> Result<(), String> {
    let (is64, little) = match (head.get(4), head.get(5)) {
        (Some(&class @ (1 | 2)), Some(&data @ (1 | 2))) => (class == 2, data == 1),
        _ => return Ok(()),
    };
    let header_len = if is64 { 64 } else { 52 };
    if head.len() < header_len {
        return Err(format!(
            "incomplete ELF file (header cut off at {len} bytes)"
        ));
    }
    let uint = |at: usize, width: usize| -> u64 {
        let bytes = &head[at..at + width];
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        if little {
            bytes.iter().rev().fold(0, fold)
        } else {
            bytes.iter().fold(0, fold)
        }
    };
    // Offsets per the ELF spec (e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum).
    let (phoff, shoff, phentsize, phnum, shentsize, shnum) = if is64 {
        (
            uint(0x20, 8),
            uint(0x28, 8),
            uint(0x36, 2),
            uint(0x38, 2),
            uint(0x3A, 2),
            uint(0x3C, 2),
        )
    } else {
        (
            uint(0x1C, 4),
            uint(0x20, 4),
            uint(0x2A, 2),
            uint(0x2C, 2),
            uint(0x2E, 2),
            uint(0x30, 2),
        )
    };
    let table_end = |off: u64, num: u64, entsize: u64| -> u128 {
        if off == 0 {
            0
        } else {
            // e_shnum is 0 with extended numbering; at least entry 0 must exist then.
            u128::from(off) + u128::from(num.max(1)) * u128::from(entsize)
        }
    };
    for (what, end) in [
        ("program header table", table_end(phoff, phnum, phentsize)),
        ("section header table", table_end(shoff, shnum, shentsize)),
    ] {
        if end > u128::from(len) {
            return Err(format!(
                "incomplete ELF file ({what} ends at byte {end}, file has {len})"
            ));
        }
    }
    Ok(())
}
