//! Enums stored and shown as a word (`running`, `runner`): `as_str`,
//! `Display` and `FromStr` from one list of variants and words. A variant
//! may also be read from older words (`Target => "target" | "http"`): rows
//! stored before a rename still read.

macro_rules! text_enum {
    ($ty:ty { $($variant:ident => $text:literal $(| $old:literal)*),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl ::std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text $(| $old)* => Ok(Self::$variant),)+
                    other => Err(format!("unknown {}: {other}", stringify!($ty))),
                }
            }
        }
    };
}

pub(crate) use text_enum;
