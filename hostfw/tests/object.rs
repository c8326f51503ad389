//! Every program and map name that userspace uses exists in the compiled
//! object, with the type userspace expects.

use aya_obj::{Object, ProgramSection};
use hostfw::datapath::OBJECT;
use hostfw_common::names::{MAPS, PROG_TC_EGRESS, PROG_TC_INGRESS, PROG_XDP, PROGRAMS};

#[test]
fn every_program_name_is_in_the_object() {
    let obj = Object::parse(OBJECT).expect("the built object parses");
    for name in PROGRAMS {
        let prog = obj
            .programs
            .get(name)
            .unwrap_or_else(|| panic!("program {name} missing from the object"));
        let ok = match name {
            PROG_XDP => matches!(prog.section, ProgramSection::Xdp { .. }),
            PROG_TC_INGRESS | PROG_TC_EGRESS => {
                matches!(prog.section, ProgramSection::SchedClassifier)
            }
            _ => false,
        };
        assert!(ok, "program {name} has section {:?}", prog.section);
    }
    assert_eq!(
        obj.programs.len(),
        PROGRAMS.len(),
        "unexpected extra programs"
    );
}

#[test]
fn every_map_name_is_in_the_object() {
    let obj = Object::parse(OBJECT).expect("the built object parses");
    for name in MAPS {
        assert!(
            obj.maps.contains_key(name),
            "map {name} missing from the object"
        );
        assert!(
            name.len() < 16,
            "map name {name} is longer than the kernel's 15 characters"
        );
    }
    // Besides the named maps: `.rodata`, the globals the loader sets (the
    // hand-off mark), one unpinned map per load.
    assert!(
        obj.maps.contains_key(".rodata"),
        "the .rodata of the hand-off mark"
    );
    assert_eq!(
        obj.maps.len(),
        MAPS.len() + 1,
        "maps: {:?}",
        obj.maps.keys().collect::<Vec<_>>()
    );
}
