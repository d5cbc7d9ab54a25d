/*
 * CMX test guest: a 512-byte x86 real-mode boot sector that talks to COM1
 * (0x3f8) by polling the 16550 directly -- no BIOS calls, no interrupts.
 * Protocol: see README.md.  Build: make (GNU as/ld).
 */
    .code16
    .set COM1, 0x3f8
    .set LSR,  COM1 + 5
    .text
    .globl _start
_start:
    cli
    xor     %ax, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    /* The stack must not share a 4 KiB page with the code at 0x7c00:
       under TCG every push would invalidate the translated code. */
    mov     $0x7000, %sp
    ljmp    $0, $init
init:
    cld
    /* 115200 8N1, interrupts off.  FCR is deliberately left alone (FIFOs off):
       writing it would flush bytes the host may already have sent. */
    mov     $COM1 + 1, %dx; xor %al, %al;  out %al, %dx   /* IER = 0 */
    mov     $COM1 + 3, %dx; mov $0x80, %al; out %al, %dx  /* LCR: DLAB */
    mov     $COM1 + 0, %dx; mov $1, %al;    out %al, %dx  /* DLL = 1 */
    mov     $COM1 + 1, %dx; xor %al, %al;  out %al, %dx   /* DLM = 0 */
    mov     $COM1 + 3, %dx; mov $0x03, %al; out %al, %dx  /* LCR: 8N1 */
    mov     $COM1 + 4, %dx; mov $0x03, %al; out %al, %dx  /* MCR: DTR|RTS */
    mov     $banner, %si
    call    puts

main:
    call    getc
    call    putc                    /* echo every byte */
    cmp     $'S', %al
    je      cmd_s
    cmp     $'L', %al
    je      cmd_l
    cmp     $'N', %al
    je      cmd_n
    jmp     main

cmd_s:
    mov     $0x1000, %ecx           /* 4096 lines */
    jmp     stream
cmd_l:
    mov     $0x40000, %ecx          /* 262144 lines */
    jmp     stream
cmd_n:                              /* 'N' + exactly 8 hex digits */
    xor     %ecx, %ecx
    mov     $8, %bp
1:  call    getc
    call    putc
    mov     %al, %ah
    sub     $'0', %al
    cmp     $10, %al
    jb      2f
    mov     %ah, %al
    or      $0x20, %al              /* lower-case */
    sub     $'a', %al
    cmp     $6, %al
    jae     main                    /* not a hex digit: command cancelled */
    add     $10, %al
2:  movzbl  %al, %eax
    shl     $4, %ecx
    or      %eax, %ecx
    dec     %bp
    jnz     1b

stream:                             /* %ecx lines "SEQ %08X\n", then "END\n" */
    xor     %ebx, %ebx
    test    %ecx, %ecx
    jz      3f
1:  mov     $seq, %si
    call    puts
    mov     %ebx, %eax
    mov     $8, %bp
2:  rol     $4, %eax
    push    %ax
    and     $0x0f, %al
    add     $'0', %al
    cmp     $'9', %al
    jbe     4f
    add     $'A' - '9' - 1, %al
4:  call    putc
    pop     %ax
    dec     %bp
    jnz     2b
    mov     $'\n', %al
    call    putc
    inc     %ebx
    cmp     %ecx, %ebx
    jne     1b
3:  mov     $end, %si
    call    puts
    jmp     main

/* putc: send %al; preserves all registers. */
putc:
    push    %dx
    push    %ax
    mov     $LSR, %dx
1:  in      %dx, %al
    test    $0x20, %al              /* THRE */
    jz      1b
    pop     %ax
    mov     $COM1, %dx
    out     %al, %dx
    pop     %dx
    ret

/* getc: receive into %al; preserves other registers. */
getc:
    push    %dx
    mov     $LSR, %dx
1:  in      %dx, %al
    test    $0x01, %al              /* DR */
    jz      1b
    mov     $COM1, %dx
    in      %dx, %al
    pop     %dx
    ret

/* puts: send NUL-terminated string at %ds:%si. */
puts:
    lodsb
    test    %al, %al
    jz      1f
    call    putc
    jmp     puts
1:  ret

banner: .asciz "CMX-GUEST READY\r\n"
seq:    .asciz "SEQ "
end:    .asciz "END\n"

    .org    510
    .byte   0x55, 0xaa
