// SPDX-License-Identifier: GPL-2.0-or-later
//! The C static library of chardev-multiplex, for a C program that links no
//! other Rust code (QEMU built with its own Rust off, the C tests): the
//! `chardev_multiplex` rlib and one copy of the Rust standard library. QEMU
//! with its Rust on links the rlib into its own root crate instead.

extern crate chardev_multiplex;
