# sitesfs, built with CMake. `pkgs.callPackage ./package.nix { }`.
{
  lib,
  stdenv,
  cmake,
  ninja,
  pkg-config,
  fuse3,
  libgit2,
  libssh2,
  tomlplusplus,
  sdbus-cpp,
  spdlog,
  libidn2,
  openssl,
  systemd,
  grpc,
  protobuf,
  nlohmann_json,
}:

stdenv.mkDerivation {
  pname = "sitesfs";
  version = "0.1.0";

  # What CMakeLists.txt compiles and installs. tests/ stays in although -DSITESFS_TESTS=OFF
  # configures none of it: CMakeLists.txt names its files, and nix/check.sh holds the source to
  # having every file it names. Leaves out local build directories, whose CMakeCache.txt would
  # hijack the configure step, and nix/ and the rest of docs/, so that editing them does not
  # rebuild the package.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../CMakeLists.txt
      ../common
      ../docs/sitesfs.8
      ../fs
      ../hooks
      ../mount
      ../schemas
      ../store
      ../tests
      ../webhook
    ];
  };

  # protoc and grpc_cpp_plugin run at build time (store/etcd's generated code).
  nativeBuildInputs = [
    cmake
    ninja
    pkg-config
    protobuf
    grpc
  ];

  # sdbus-cpp is the 1.x series (sdbus-cpp_2 changed the API). No gtest: the tests are not built.
  buildInputs = [
    fuse3
    libgit2
    libssh2
    tomlplusplus
    sdbus-cpp
    spdlog
    libidn2
    openssl
    systemd
    grpc
    protobuf
    nlohmann_json
  ];

  # Only the daemon: the test programs are of no use in the package (see doCheck).
  cmakeFlags = [ "-DSITESFS_TESTS=OFF" ];

  # The suite mounts FUSE filesystems and runs caddy, sshd, dbus-daemon and git servers, none of
  # which the build sandbox allows; CI runs it on a full machine (scripts/test).
  doCheck = false;

  meta = {
    description = "The sites of a web host as a filesystem, deployed to Caddy from git";
    platforms = lib.platforms.linux;
    mainProgram = "sitesfs";
  };
}
