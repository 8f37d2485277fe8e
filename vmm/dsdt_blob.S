/* The DSDT compiled by iasl from vmm/dsdt.asl, linked in as read-only data.
 * Built with -DDSDT_AML='"path/to/dsdt.aml"' (see the Makefile). */

#ifndef DSDT_AML
#error "DSDT_AML must name the compiled DSDT (.aml)"
#endif

    .section .rodata
    .balign 16
    .globl dsdt_aml_start
    .type dsdt_aml_start, @object
dsdt_aml_start:
    .incbin DSDT_AML
    .globl dsdt_aml_end
dsdt_aml_end:
    .size dsdt_aml_start, dsdt_aml_end - dsdt_aml_start

    /* No executable stack needed by this object. */
    .section .note.GNU-stack, "", @progbits
