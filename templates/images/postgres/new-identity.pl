#!/usr/bin/perl
# Gives a cluster copied from the image's template its own database system identifier (the one initdb would have
# made: seconds, microseconds and pid), so no two clusters started from one image share it (pgBackRest and WAL
# tools tell clusters apart by it). It is written in global/pg_control, whose CRC-32C is recomputed, and in the long
# header of each WAL segment's first page. Every file is checked to hold the template's identifier first; on any
# mismatch nothing is written and it exits 1. Usage: new-identity.pl PGDATA
use strict;
use warnings;
use Time::HiRes qw(gettimeofday);

my $pgdata = shift or die "usage: new-identity.pl PGDATA\n";
my @table = map {
    my $c = $_;
    $c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
    $c;
} 0 .. 255;

sub slurp {
    my ($path, $len) = @_;
    open(my $fh, '<:raw', $path) or die "cannot read $path: $!\n";
    my $n = read($fh, my $buf, $len) // die "cannot read $path: $!\n";
    close($fh);
    return $buf;
}

sub patch {
    my ($path, $offset, $bytes) = @_;
    open(my $fh, '+<:raw', $path) or die "cannot write $path: $!\n";
    seek($fh, $offset, 0) or die "cannot seek in $path: $!\n";
    print {$fh} $bytes or die "cannot write $path: $!\n";
    close($fh) or die "cannot write $path: $!\n";
}

my $control = "$pgdata/global/pg_control";
my $data = slurp($control, 8192);
my $old = substr($data, 0, 8);
# The CRC field follows the struct's last member: the first 4-aligned offset whose running CRC matches it.
my ($crc, $at) = (0xFFFFFFFF, undef);
for my $i (0 .. 1020) {
    if ($i >= 16 && $i % 4 == 0 && ($crc ^ 0xFFFFFFFF) == unpack('V', substr($data, $i, 4))) {
        $at = $i;
        last;
    }
    $crc = $table[($crc ^ ord(substr($data, $i, 1))) & 0xFF] ^ ($crc >> 8);
}
defined $at or die "$control: no valid CRC found\n";

opendir(my $dh, "$pgdata/pg_wal") or die "cannot read $pgdata/pg_wal: $!\n";
my @segments = sort grep { /^[0-9A-F]{24}$/ } readdir($dh);
closedir($dh);
@segments or die "$pgdata/pg_wal: no WAL segment\n";
for my $s (@segments) {
    substr(slurp("$pgdata/pg_wal/$s", 32), 24, 8) eq $old or die "$pgdata/pg_wal/$s: not the template's identifier\n";
}

my ($sec, $usec) = gettimeofday();
my $new = pack('Q<', ($sec << 32) | ($usec << 12) | ($$ & 0xFFF));
substr($data, 0, 8) = $new;
$crc = 0xFFFFFFFF;
$crc = $table[($crc ^ ord(substr($data, $_, 1))) & 0xFF] ^ ($crc >> 8) for 0 .. $at - 1;
patch("$pgdata/pg_wal/$_", 24, $new) for @segments;
patch($control, 0, $new . substr($data, 8, $at - 8) . pack('V', $crc ^ 0xFFFFFFFF));
